"""A learner's answers, for grading tests: the reference solutions pasted into the exercise cells.

An exercise cell is found by what it defines (a function or a variable), never by its position:
the top-level statement that defines the name is replaced by the solution's code, and the rest
of the cell (a checker call, for instance) stays.
"""

import ast
import inspect

import nbformat

from tests.paths import ROOT, load_module

SOLUTIONS = ROOT / "1_instruction_tuning" / "solutions"
chat = load_module(SOLUTIONS / "chat_templates_solutions.py")
sft = load_module(SOLUTIONS / "sft_solutions.py")


def with_notebook_tokenizer(function):
    """A chat solution as the notebook calls it: the tokenizer is the notebook's instruct_tokenizer."""
    return inspect.getsource(function).replace("(row, tokenizer)", "(row, tokenizer=instruct_tokenizer)")


# the name an exercise cell defines → the reference solution, as a learner would paste it
REFERENCE = {
    "smoltalk_row_to_chatml": with_notebook_tokenizer(chat.smoltalk_row_to_chatml),
    "gsm8k_row_to_messages": inspect.getsource(chat.gsm8k_row_to_messages),
    "gsm8k_row_to_chatml": with_notebook_tokenizer(chat.gsm8k_row_to_chatml),
    "code_config": f"code_config = {sft.CODE_COMPLETION_CONFIG!r}",
    "my_dataset": "from datasets import Dataset\n\n"
    + inspect.getsource(sft.own_dataset_example)
    + "\n\nmy_dataset = own_dataset_example()",
}


def defined_name(statement):
    if isinstance(statement, ast.FunctionDef):
        return statement.name
    if isinstance(statement, ast.Assign) and isinstance(statement.targets[0], ast.Name):
        return statement.targets[0].id
    return None


def paste(notebook, answers):
    """Replace, in every code cell, the statement defining each name of ``answers`` with its code.

    Returns the names it replaced, so that a test can check that every answer found its cell.
    """
    replaced = []
    for cell in notebook.cells:
        try:
            statements = ast.parse(cell.source).body if cell.cell_type == "code" else []
        except SyntaxError:  # IPython magics (the Colab install cell)
            continue
        lines = cell.source.splitlines()
        for statement in reversed(statements):  # bottom up, so that line numbers stay valid
            name = defined_name(statement)
            if name in answers:
                lines[statement.lineno - 1 : statement.end_lineno] = answers[name].splitlines()
                replaced.append(name)
        cell.source = "\n".join(lines)
    return replaced


def answered_copy(source, target, answers):
    """Write ``source`` with ``answers`` pasted in to ``target``; return the names pasted."""
    notebook = nbformat.read(source, as_version=4)
    replaced = paste(notebook, answers)
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, target)
    return replaced
