"""Loading from the Hugging Face Hub without surprises: clear errors, tokens from the environment."""

import os
from contextlib import contextmanager

from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError


@contextmanager
def explain_hub_errors(parameter):
    """Turn a failed download into a message naming the notebook parameter to change."""
    try:
        yield
    except (OSError, HfHubHTTPError, LocalEntryNotFoundError, ConnectionError) as error:
        raise RuntimeError(
            f"Could not load from the Hugging Face Hub ({type(error).__name__}: {error}). "
            f"Without network access, set the notebook parameter `{parameter}` to a local folder "
            f"(`course run` runs the notebooks offline on a tiny stand-in model)."
        ) from error


def hub_token():
    """The Hub token from HF_TOKEN or Colab's secrets; None when there is none. Never prints it."""
    token = os.environ.get("HF_TOKEN")
    if token:
        return token
    try:
        from google.colab import userdata  # only inside Colab
    except ImportError:
        return None
    try:
        return userdata.get("HF_TOKEN")
    except Exception:  # the secret is missing or notebook access was not granted
        return None
