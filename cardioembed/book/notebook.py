"""Set-up shared by the notebooks' first cell."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import warnings


def quiet_progress_bars() -> None:
    """Keep library progress bars and chatter out of the notebooks; the progress lines of
    the study and of its textbook reader (`logging`, info level) go to the cell's output."""
    os.environ["TQDM_DISABLE"] = "1"  # read by tqdm when each bar is created
    warnings.filterwarnings("ignore", message="IProgress not found")
    warnings.filterwarnings("ignore", category=FutureWarning, module="mteb")
    import datasets
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    datasets.disable_progress_bars()
    logging.getLogger("sentence_transformers").setLevel(logging.WARNING)
    for name in ("cardioembed", "textbook_reader"):
        package = logging.getLogger(name)
        if not package.handlers:
            handler = logging.StreamHandler(sys.stdout)
            handler.setFormatter(logging.Formatter("  %(message)s"))
            package.addHandler(handler)
            package.setLevel(logging.INFO)
            package.propagate = False  # printed once, not again by a root handler


@contextlib.contextmanager
def quiet_output():
    """Keep the trainer's log out of the notebook; on an error it goes to stderr."""
    buffer = io.StringIO()
    try:
        with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
            yield buffer
    except BaseException:
        sys.stderr.write(buffer.getvalue()[-5000:])
        raise
