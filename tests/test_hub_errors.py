"""A failed download tells the learner what went wrong and what to do: no network, a mistyped name,
a gated repository, a refused token. The errors come from the real libraries, talking to a local
stand-in for the Hub that answers the way huggingface.co does (its X-Error-Code / X-Error-Message headers)."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import pytest
from datasets import load_dataset
from transformers import AutoTokenizer

from course_helpers import explain_hub_errors, hub_token

# repository → (status, headers) the stand-in Hub answers with, as huggingface.co does
ANSWERS = {
    "someone/mistyped": (401, {"X-Error-Code": "RepoNotFound", "X-Error-Message": "Repository not found"}),
    "meta-llama/gated-model": (401, {"X-Error-Code": "GatedRepo", "X-Error-Message": "Access restricted"}),
    "someone/gated-for-this-token": (403, {"X-Error-Code": "GatedRepo", "X-Error-Message": "Access restricted"}),
    "someone/any-model": (401, {"X-Error-Message": "Invalid credentials in Authorization header"}),
}


class FakeHub(BaseHTTPRequestHandler):
    def answer(self, body):
        status, headers = next((a for repo, a in ANSWERS.items() if repo in self.path), (404, {}))
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2" if body else "0")
        self.end_headers()
        if body:
            self.wfile.write(b"{}")

    def do_GET(self):
        self.answer(body=True)

    def do_HEAD(self):
        self.answer(body=False)

    def log_message(self, *args):
        pass


@pytest.fixture
def hub_at(monkeypatch, tmp_path):
    """Point transformers and datasets at an endpoint, online, with an empty cache and no token."""

    def point_at(endpoint):
        monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
        monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "datasets"))
        monkeypatch.delenv("HF_TOKEN", raising=False)
        for variable in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
            monkeypatch.delenv(variable, raising=False)
        monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False)
        monkeypatch.setattr("huggingface_hub.constants.ENDPOINT", endpoint)
        template = endpoint + "/{repo_id}/resolve/{revision}/{filename}"
        monkeypatch.setattr("huggingface_hub.constants.HUGGINGFACE_CO_URL_TEMPLATE", template)
        monkeypatch.setattr("datasets.config.HF_ENDPOINT", endpoint)
        monkeypatch.setattr("datasets.config.HF_HUB_OFFLINE", False)
        # the Hub client retries a refused connection 5 times with back-off (23 s): not in a test
        monkeypatch.setattr("huggingface_hub.utils._http.time", SimpleNamespace(sleep=lambda seconds: None))

    return point_at


@pytest.fixture
def fake_hub(hub_at):
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeHub)
    # shutdown() waits for the server's next poll: every 0.5 s by default
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
    hub_at(f"http://127.0.0.1:{server.server_port}")
    yield
    server.shutdown()
    server.server_close()


@pytest.fixture
def offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)


def explained(parameter, load):
    with pytest.raises(RuntimeError) as raised:
        with explain_hub_errors(parameter):
            load()
    message = str(raised.value)
    assert f"`{parameter}`" in message
    assert "tests/" not in message and "pytest" not in message, "learners run `course run`, not the test suite"
    return message


def test_offline_mode_says_the_hub_is_unreachable(offline):
    message = explained("model_name", lambda: AutoTokenizer.from_pretrained("HuggingFaceTB/SmolLM2-135M"))
    assert "could not be reached" in message and "local folder" in message and "`course run`" in message


def test_no_network_says_the_hub_is_unreachable(hub_at):
    hub_at("http://127.0.0.1:9")  # nothing listens there: the connection is refused, as without network
    message = explained("model_name", lambda: AutoTokenizer.from_pretrained("HuggingFaceTB/SmolLM2-135M"))
    assert "could not be reached" in message


def test_unreachable_dataset_says_the_hub_is_unreachable(offline, tmp_path):
    load = lambda: load_dataset("HuggingFaceTB/smoltalk", "everyday-conversations", cache_dir=str(tmp_path / "c"))  # noqa: E731
    assert "could not be reached" in explained("dataset_name", load)


def test_mistyped_model_name_says_check_the_spelling(fake_hub):
    message = explained("model_name", lambda: AutoTokenizer.from_pretrained("someone/mistyped"))
    assert "check its spelling" in message and "could not be reached" not in message


def test_mistyped_dataset_name_says_check_the_spelling(fake_hub):
    message = explained("dataset_name", lambda: load_dataset("someone/mistyped"))
    assert "check its spelling" in message


def test_gated_model_without_login_says_accept_and_give_a_token(fake_hub):
    message = explained("model_name", lambda: AutoTokenizer.from_pretrained("meta-llama/gated-model"))
    assert "gated" in message and "not logged in" in message and "HF_TOKEN" in message


def test_gated_dataset_without_access_says_accept_the_conditions(fake_hub, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_no_access_yet")
    message = explained("dataset_name", lambda: load_dataset("someone/gated-for-this-token"))
    assert "gated" in message and "has no access yet" in message and "accept the conditions" in message


def test_refused_token_says_make_a_new_one(fake_hub, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_expired")
    message = explained("model_name", lambda: AutoTokenizer.from_pretrained("someone/any-model"))
    assert "refused the token" in message and "settings/tokens" in message and "hf_expired" not in message


def test_token_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "from-env")
    assert hub_token() == "from-env"
    monkeypatch.delenv("HF_TOKEN")
    assert hub_token() is None
