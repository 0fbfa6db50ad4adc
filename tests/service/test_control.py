"""`python -m service.control`: the container's health check and per-replica reload."""

import pytest

from bench.http import free_port, running_service
from service.control import main
from service.settings import Settings

pytestmark = pytest.mark.slow  # real services started and stopped


def test_health_is_zero_only_while_the_service_answers(live_server, monkeypatch, capsys):
    monkeypatch.setenv("TRICL_PORT", live_server.rsplit(":", 1)[1])
    assert main(["health"]) == 0
    monkeypatch.setenv("TRICL_PORT", str(free_port()))
    assert main(["health"]) == 1
    assert "health" in capsys.readouterr().err


def test_reload_sends_the_admin_key(index_dir, monkeypatch, capsys):
    monkeypatch.delenv("TRICL_ADMIN_KEY", raising=False)
    assert main(["reload"]) == 2
    assert "TRICL_ADMIN_KEY" in capsys.readouterr().err
    with running_service(index_dir, {"TRICL_ADMIN_KEY": "right"}) as (url, _):
        monkeypatch.setenv("TRICL_PORT", url.rsplit(":", 1)[1])
        monkeypatch.setenv("TRICL_ADMIN_KEY", "right")
        assert main(["reload"]) == 0
        assert '"status":"reloaded"' in capsys.readouterr().out
        monkeypatch.setenv("TRICL_ADMIN_KEY", "wrong")
        assert main(["reload"]) == 1
        assert "401" in capsys.readouterr().err


def test_empty_settings_mean_the_default(monkeypatch):
    """A copied .env.example leaves keys empty; that must read as unset, not as invalid."""
    for name in ("TRICL_API_KEY", "TRICL_ADMIN_KEY", "TRICL_CORS_ORIGINS", "TRICL_MAX_TOP_K"):
        monkeypatch.setenv(name, "")
    settings = Settings()
    assert settings.api_key is None and settings.admin_key is None
    assert settings.cors_origins == [] and settings.max_top_k == 1000


@pytest.mark.parametrize("argv", [[], ["restart"]])
def test_unknown_actions_are_refused(argv):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
