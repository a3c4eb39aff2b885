"""Errors that the command line turns into a one-line message and exit code 2."""


class InputError(ValueError):
    """A user-supplied input is unusable.

    Parameters
    ----------
    name : str
        The input as the user knows it (the quantity, e.g. ``"dwi"`` or ``"tumor seed"``, or a file path; the CLI and the GUI
        name it by their own flag or field, see ``SpinePlannerLib.cli.main.FLAGS``).
    problem : str
        What is wrong with it, in one sentence, ideally saying what would fix it.
    """

    def __init__(self, name: str, problem: str):
        self.name = name
        self.problem = problem
        super().__init__(f"{name}: {problem}")
