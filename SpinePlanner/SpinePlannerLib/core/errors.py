"""Errors that the command line turns into a one-line message and exit code 2."""


class InputError(ValueError):
    """A user-supplied input is unusable.

    Parameters
    ----------
    name : str
        The input as the user knows it (a CLI option such as ``--dwi`` or a file path).
    problem : str
        What is wrong with it, in one sentence, ideally saying what would fix it.
    """

    def __init__(self, name: str, problem: str):
        self.name = name
        self.problem = problem
        super().__init__(f"{name}: {problem}")
