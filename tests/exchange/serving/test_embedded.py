"""Where the embedded servers keep their data: `var/` at the repository's root, whatever module asks."""
from pathlib import Path

from exchange.serving.embedded import default_var_dir

ROOT = Path(__file__).resolve().parents[3]


def test_the_embedded_servers_live_under_the_repositorys_var(monkeypatch):
    monkeypatch.delenv("EXCHANGE_VAR_DIR", raising=False)
    assert default_var_dir() == ROOT / "var"


def test_exchange_var_dir_moves_them(monkeypatch, tmp_path):
    monkeypatch.setenv("EXCHANGE_VAR_DIR", str(tmp_path))
    assert default_var_dir() == tmp_path
