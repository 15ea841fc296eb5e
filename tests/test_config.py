from __future__ import annotations

from pathlib import Path

import pytest

from llmtrail.config import load_settings, masked
from llmtrail.errors import ConfigError


def test_precedence_flags_over_env_over_file(tmp_path: Path) -> None:
    path = tmp_path / "llmtrail.toml"
    path.write_text('host = "0.0.0.0"\nport = 1111\nregion = "file"\n')
    s = load_settings(path, env={})
    assert (s.host, s.port, s.region) == ("0.0.0.0", 1111, "file")
    s = load_settings(path, env={"LLMTRAIL_PORT": "2222", "LLMTRAIL_REGION": "env"})
    assert (s.port, s.region) == (2222, "env")
    s = load_settings(path, env={"LLMTRAIL_PORT": "2222"}, overrides={"port": 3333})
    assert s.port == 3333


def test_defaults_are_safe() -> None:
    s = load_settings(None, env={})
    assert s.host == "127.0.0.1"
    assert [r.match for r in s.routes] == ["sim/*"]


def test_file_in_data_dir_is_found(tmp_path: Path) -> None:
    (tmp_path / "llmtrail.toml").write_text('[aliases]\nfast = "sim/fast"\n')
    s = load_settings(None, env={"LLMTRAIL_DATA_DIR": str(tmp_path)})
    assert s.aliases == {"fast": "sim/fast"}


def test_route_flags_and_presets() -> None:
    s = load_settings(None, env={}, routes=["gpt-*=openai", "local/*=sim:echo"])
    assert s.routes[0].provider == "sim" and s.routes[0].model == "echo"
    assert s.providers["openai"].base_url == "https://api.openai.com/v1"
    assert s.providers["openai"].api_key_env == "OPENAI_API_KEY"
    shown = masked(s, env={"OPENAI_API_KEY": "sk-secret"})
    assert "sk-secret" not in str(shown)


@pytest.mark.parametrize(
    ("text", "routes", "needle"),
    [
        ('[providers.x]\ntype = "openai"\nbase_url = "u"\napi_key = "sk"\n', [], "api_key_env"),
        ('[providers.x]\ntype = "bogus"\n', [], "type must be one of"),
        ('[providers.x]\ntype = "openai"\n', [], "base_url is required"),
        ("nonsense = 1\n", [], "unknown setting"),
        ("[limits]\nmax_body = 1\n", [], "unknown setting"),
        ('port = "abc"\n', [], "port must be a number"),
        ("", ["noequals"], "PATTERN=PROVIDER"),
        ("", ["x*=nowhere"], "not defined"),
        ("this is = = not toml", [], "bad.toml"),
        ('[providers.x]\ntype = "openai"\nbase_url = "http://u:pw@h/v1"\n', [], "credentials"),
        ('[providers.x]\ntype = "openai"\nbase_url = "http://h/v1?key=1"\n', [], "query"),
        ('[providers.x]\ntype = "openai"\nbase_url = "ftp://h"\n', [], "http(s)"),
        (
            '[providers.x]\ntype = "openai"\nbase_url = "http://h"\nopenai_api_key = "s"\n',
            [],
            "looks like a secret",
        ),
        ('[limits]\nmax_request_bytes = "big"\n', [], "finite number"),
        ("[spool]\nfsync = 1\n", [], "true or false"),
        ('promoted_metadata_keys = ["tenant-id", "tenant_id"]\n', [], "share the column"),
        ('[[routes]]\nprovider = "sim"\n', [], "needs match and provider"),
        ("providers = 5\n", [], "providers must be a table"),
        ("[spool]\nmax_bytes = inf\n", [], "finite number"),
        ("[spool]\nmax_bytes = 0\n", [], "at least 1"),
        ("drain_timeout_s = nan\n", [], "in range"),
        ("port = 70000\n", [], "in range"),
        ('log_level = "verbose"\n', [], "log_level must be one of"),
        ('[providers.x]\ntype = "openai"\nbase_url = "http://h/v1#t"\n', [], "query"),
        (
            '[providers.x]\ntype = "openai"\nbase_url = "http://h"\n[providers.x.headers]\n'
            'Authorization = "Bearer sk-1"\n',
            [],
            "unknown setting",
        ),
        ("[providers.sim]\nlatency = 5\n", [], "unknown setting"),
        ("[server]\nrecorder_nice = 20\n", [], "recorder_nice must be from 0 to 19"),
        ("[query]\nthreads = 1025\n", [], "[query] threads must be from 0"),
        ("[query]\nthreads = -1\n", [], "threads must be a finite number of at least 0"),
    ],
)
def test_bad_configuration_names_the_setting(
    tmp_path: Path, text: str, routes: list[str], needle: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_settings(path, env={}, routes=routes)
    assert needle in str(err.value)


def test_tables_from_the_environment(tmp_path: Path) -> None:
    s = load_settings(
        None,
        env={
            "LLMTRAIL_SPOOL__MAX_BYTES": "5000000",
            "LLMTRAIL_SPOOL__FSYNC": "false",
            "LLMTRAIL_LIMITS__MAX_JSON_DEPTH": "10",
        },
    )
    assert (s.spool.max_bytes, s.spool.fsync, s.limits.max_json_depth) == (5_000_000, False, 10)
    with pytest.raises(ConfigError) as err:
        load_settings(None, env={"LLMTRAIL_SPOOL__MAX_BYTES": "nan"})
    assert "max_bytes" in str(err.value)
