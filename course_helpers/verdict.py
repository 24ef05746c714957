"""What a checker tells the learner: passed or not, and what to fix."""

from dataclasses import dataclass


class ExerciseProblem(ValueError):
    """Raised inside a checker when an answer is wrong; its message says what to fix."""


@dataclass(frozen=True)
class Verdict:
    ok: bool
    message: str

    def __repr__(self):
        return ("✅ " if self.ok else "❌ ") + self.message

    def __bool__(self):
        return self.ok


def verdict_of(diagnose, success_message, *args, **kwargs):
    """Run ``diagnose(*args)`` and return its verdict instead of raising.

    A notebook cell that ends with the checker's call shows the verdict as its output.
    """
    try:
        message = diagnose(*args, **kwargs) or success_message
    except ExerciseProblem as problem:
        return Verdict(False, str(problem))
    return Verdict(True, message)


def describe(value):
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def call_learner_function(function, row, index):
    """Call the learner's function on one row, turning its crash into a hint."""
    try:
        return function(row)
    except Exception as error:  # the learner's code may raise anything
        raise ExerciseProblem(
            f"your function raised {type(error).__name__}: {error} (on row {index}). "
            f"The row has the keys {sorted(row)}."
        ) from None


def expect_dict_with(result, key, index):
    if result is None:
        raise ExerciseProblem(f"your function returned None for row {index}: add `return {{{key!r}: ...}}` at its end.")
    if not isinstance(result, dict):
        raise ExerciseProblem(
            f"your function should return a dict like {{{key!r}: ...}} (what dataset.map expects), "
            f"but returned a {type(result).__name__}: {describe(result)}."
        )
    if key not in result:
        raise ExerciseProblem(f"the dict your function returned has the keys {sorted(result)}, but no {key!r} key.")
    return result[key]
