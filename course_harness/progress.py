"""A papermill engine that reports each cell as it starts: which cell out of how many, and when."""

import time

from papermill.engines import NBClientEngine, papermill_engines

PROGRESS_ENGINE = "course-progress"


class ProgressEngine(NBClientEngine):
    """papermill's nbclient engine, calling ``progress(line)`` as each code cell starts."""

    @classmethod
    def execute_managed_notebook(cls, nb_man, kernel_name, progress=None, **kwargs):
        if progress is not None:
            report_cell_starts(nb_man, progress)
        return super().execute_managed_notebook(nb_man, kernel_name, **kwargs)


def report_cell_starts(nb_man, progress):
    """Wrap the manager's cell_start so that it reports ``cell i/n, t s`` for code cells."""
    code_cells = [i for i, cell in enumerate(nb_man.nb.cells) if cell.cell_type == "code"]
    start = time.perf_counter()
    cell_start = nb_man.cell_start

    def reporting_cell_start(cell, cell_index=None, **kwargs):
        if cell_index in code_cells:
            position = code_cells.index(cell_index) + 1
            progress(f"cell {position}/{len(code_cells)}, {time.perf_counter() - start:.0f} s")
        return cell_start(cell, cell_index, **kwargs)

    nb_man.cell_start = reporting_cell_start


papermill_engines.register(PROGRESS_ENGINE, ProgressEngine)
