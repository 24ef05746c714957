"""Loading from the Hugging Face Hub without surprises: clear errors, tokens from the environment."""

import os
from contextlib import contextmanager

from huggingface_hub.errors import (
    GatedRepoError,
    HfHubHTTPError,
    HFValidationError,
    LocalEntryNotFoundError,
    OfflineModeIsEnabled,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

TOKEN_HINT = "set HF_TOKEN, or add HF_TOKEN to Colab's secrets (🔑 in the sidebar) and allow this notebook to read it"


def _chain(error):
    """The error and every error it was raised from: transformers and datasets wrap the Hub's errors."""
    seen = []
    while error is not None and error not in seen:
        seen.append(error)
        error = error.__cause__ or error.__context__
    return seen


def _status(error):
    response = getattr(error, "response", None)
    return getattr(response, "status_code", None)


def diagnose_hub_error(error, parameter):
    """What went wrong when loading the notebook parameter ``parameter``, and what to do about it."""
    chain = _chain(error)
    text = " ".join(str(e) for e in chain).lower()
    if any(isinstance(e, GatedRepoError) for e in chain) or "is a gated dataset" in text:
        logged_in = hub_token() and not any(_status(e) == 401 for e in chain) and "must be authenticated" not in text
        who = "your token has no access yet" if logged_in else "you are not logged in"
        return (
            f"`{parameter}` names a gated repository and {who}. Open its page on huggingface.co while logged "
            f"in, accept the conditions to get access, then give the notebook a token: {TOKEN_HINT}."
        )
    http_errors = [e for e in chain if isinstance(e, HfHubHTTPError) and not isinstance(e, RepositoryNotFoundError)]
    if any(_status(e) in (401, 403) for e in http_errors):
        return (
            f"the Hub refused the token while loading `{parameter}`: it is invalid, expired, or lacks read access. "
            f"Create a token with read access at https://huggingface.co/settings/tokens, then {TOKEN_HINT}."
        )
    not_found = (RepositoryNotFoundError, RevisionNotFoundError, HFValidationError)
    if any(isinstance(e, not_found) for e in chain) or "doesn't exist on the hub" in text:
        private = "" if hub_token() else f" If it is a private repository, give the notebook a token: {TOKEN_HINT}."
        return (
            f"the Hub has no repository named by `{parameter}`: check its spelling (owner/name, as on the "
            f"repository's page, e.g. HuggingFaceTB/SmolLM2-135M), or set it to a local folder.{private}"
        )
    offline = (OfflineModeIsEnabled, LocalEntryNotFoundError, ConnectionError, TimeoutError)
    if any(isinstance(e, offline) for e in chain) or "couldn't connect" in text or "couldn't reach" in text:
        return (
            f"the Hub could not be reached (no network, or offline mode is on). Check the connection, or set "
            f"the notebook parameter `{parameter}` to a local folder. (`course run` runs the notebooks offline "
            f"on the course's tiny twin of SmolLM2.)"
        )
    return f"check the notebook parameter `{parameter}`: it must name a Hub repository or a local folder."


@contextmanager
def explain_hub_errors(parameter):
    """Turn a failed download into a message that says what went wrong and which parameter to change."""
    try:
        yield
    except (OSError, HfHubHTTPError, ConnectionError, HFValidationError) as error:
        advice = diagnose_hub_error(error, parameter)
        raise RuntimeError(f"Could not load `{parameter}` ({type(error).__name__}: {error})\n→ {advice}") from error


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
