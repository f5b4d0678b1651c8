"""The shared login options of ``wirelab.cli.common``: the password's order of sources, the CA
file's context, and each topic's own environment variable and error line end to end."""

from __future__ import annotations

import os
import socket
import ssl
from pathlib import Path

import pytest

from tests.conftest import run_wirelab
from wirelab.cli.common import client_tls_context, password_env, resolve_password
from wirelab.errors import ConfigError
from wirelab.net.ca import LabCA

ENV = "WIRELAB_TEST_PASSWORD"


@pytest.fixture
def no_lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """No lab runs (an empty WIRELAB_HOME) and no password variable is set; the environment."""
    monkeypatch.setenv("WIRELAB_HOME", str(tmp_path / "home"))
    for name in [n for n in os.environ if n.startswith("WIRELAB_") and n.endswith("_PASSWORD")]:
        monkeypatch.delenv(name)
    monkeypatch.delenv(ENV, raising=False)
    return {k: v for k, v in os.environ.items() if k not in ("WIRELAB_DEBUG", "COLUMNS")}


def test_password_env_names_the_topic() -> None:
    assert password_env("pop") == "WIRELAB_POP_PASSWORD"
    assert password_env("ssh") == "WIRELAB_SSH_PASSWORD"


def test_the_given_password_wins(no_lab: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, "from-env")
    assert resolve_password("brandon", "given", ENV, default="dflt") == "given"
    assert resolve_password("brandon", "", ENV) == ""  # an empty --password is a password


def test_then_the_environment_then_the_default(
    no_lab: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert resolve_password("anonymous", None, ENV, default="anonymous@") == "anonymous@"
    monkeypatch.setenv(ENV, "from-env")
    assert resolve_password("anonymous", None, ENV, default="anonymous@") == "from-env"


def test_without_a_lab_or_a_terminal_it_is_one_config_error(no_lab: dict[str, str]) -> None:
    # pytest's stdin is not a terminal, so nothing may be asked
    with pytest.raises(ConfigError, match=rf"^no password: give --password or set {ENV}$"):
        resolve_password("brandon", None, ENV)
    with pytest.raises(ConfigError, match=r"^no key for brandon$"):
        resolve_password("brandon", None, ENV, missing="no key for brandon")


def test_client_tls_context_verifies(no_lab: dict[str, str], tmp_path: Path) -> None:
    ca = LabCA.load_or_create(tmp_path / "ca")
    for context in (client_tls_context(ca.cert_path), client_tls_context()):
        assert context.verify_mode == ssl.CERT_REQUIRED
        assert context.check_hostname
    assert len(client_tls_context(ca.cert_path).get_ca_certs()) == 1  # the lab CA, only it


def test_a_bad_cafile_is_a_config_error(no_lab: dict[str, str], tmp_path: Path) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    for path in (junk, tmp_path / "missing.pem"):
        with pytest.raises(ConfigError, match=f"cannot load the CA file {path}"):
            client_tls_context(path)


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(
    ("command", "line"),
    [
        (
            "pop stat 127.0.0.1 -p {port}",
            "no password: give --password or set WIRELAB_POP_PASSWORD",
        ),
        (
            "imap folders 127.0.0.1 -p {port}",
            "no password: give --password or set WIRELAB_IMAP_PASSWORD",
        ),
        (
            "smtp send a@example.com b@example.com -s 127.0.0.1:{port} -u brandon",
            "no password: give --password or set WIRELAB_SMTP_PASSWORD",
        ),
        (
            "ftp client 127.0.0.1 -p {port} -u brandon",
            "no password for brandon (use --password or $WIRELAB_FTP_PASSWORD)",
        ),
        (
            "sftp ls --host 127.0.0.1 -p {port}",
            "no key and no password for brandon (use --key or --password)",
        ),
    ],
)
def test_no_password_is_one_line_naming_the_topics_variable(
    command: str, line: str, closed_port: int, no_lab: dict[str, str]
) -> None:
    """Every login client asks its own variable, and says so in one line (exit 1), no traceback."""
    done = run_wirelab(*command.format(port=closed_port).split(), env=no_lab, input="")
    assert done.returncode == 1, done.stderr
    assert done.stderr.strip() == f"wirelab: error: {line}"


def test_the_topics_variable_is_the_password_used(closed_port: int, no_lab: dict[str, str]) -> None:
    """With $WIRELAB_POP_PASSWORD set the client goes on to connect (and meets a closed port)."""
    env = no_lab | {"WIRELAB_POP_PASSWORD": "secret"}
    done = run_wirelab("pop", "stat", "127.0.0.1", "-p", str(closed_port), env=env, input="")
    assert done.returncode == 1, done.stderr
    assert "password" not in done.stderr
    assert "refused" in done.stderr.lower()
