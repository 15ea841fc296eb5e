"""``[store] url``: the engines it names, from the file, ``LLMTRAIL_STORE__URL`` and
``--store``; bad URLs refused naming the setting; the stand-in for DuckDB on ClickHouse."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from llmtrail.config import load_settings
from llmtrail.errors import ConfigError, Unavailable
from llmtrail.store.engines import NotOnThisEngine, open_stores, parse_store_url


def test_the_default_is_duckdb_in_the_data_directory(tmp_path: Path) -> None:
    settings = load_settings(None, env={}, overrides={"data_dir": str(tmp_path)})
    where = parse_store_url(settings.store.url, settings.data_dir)
    assert (where.engine, where.path) == ("duckdb", tmp_path / "llmtrail.duckdb")


@pytest.mark.parametrize(
    ("url", "engine", "path", "server"),
    [
        ("duckdb:///var/lib/x.duckdb", "duckdb", Path("/var/lib/x.duckdb"), None),
        ("duckdb://rel/x.duckdb", "duckdb", Path("rel/x.duckdb"), None),
        ("chdb:///srv/chdb", "chdb", Path("/srv/chdb"), None),
        ("clickhouse://ops@ch1:8123/calls", "clickhouse", None, ("ops", "ch1", 8123, "calls")),
        ("clickhouse://ch1", "clickhouse", None, ("default", "ch1", 8123, "llmtrail")),
        ("clickhouses://ops@ch1/calls", "clickhouse", None, ("ops", "ch1", 8443, "calls")),
    ],
)
def test_urls_name_their_engine(
    url: str, engine: str, path: Path | None, server: tuple[str, str, int, str] | None
) -> None:
    where = parse_store_url(url, Path("data"))
    assert where.engine == engine and where.path == path
    if server is not None:
        assert (where.user, where.host, where.port, where.database) == server
        assert where.secure == url.startswith("clickhouses:")
        assert where.url.endswith(f"@{server[1]}:{server[2]}/{server[3]}")


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("postgres://db/x", "is not a store URL"),
        ("/just/a/path", "is not a store URL"),
        ("duckdb://", "needs a path"),
        ("chdb:///", "needs a path"),
        ("chdb:///x?replica=2", "only ?database=NAME"),
        ("chdb:///x?database=a&database=b", "only ?database=NAME"),
        ("chdb:///x?database=no-dashes", "database 'no-dashes'"),
        ("duckdb:///x.duckdb?database=y", "no query string"),
        ("clickhouse://ops:hunter2@ch1/calls", "password_env"),
        ("clickhouse://ch1:99999/calls", "port"),
        ("clickhouse://ch1/bad-name", "database 'bad-name'"),
        ("clickhouse://ch1/x?secure=1", "no query string"),
        ("clickhouse:///calls", "needs a host"),
    ],
)
def test_bad_urls_name_the_setting(url: str, says: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(None, env={"LLMTRAIL_STORE__URL": url}, overrides={"data_dir": tmp_path})
    assert "[store] url" in str(err.value) and says in str(err.value)
    assert "hunter2" not in str(err.value)


def test_a_chdb_url_may_name_its_database() -> None:
    where = parse_store_url("chdb:///srv/chdb?database=calls", Path("data"))
    assert (where.path, where.database) == (Path("/srv/chdb"), "calls")
    assert where.url == "chdb:///srv/chdb?database=calls"
    assert parse_store_url("chdb:///srv/chdb", Path("data")).database == "llmtrail"


def test_file_then_environment_then_flag(tmp_path: Path) -> None:
    config = tmp_path / "llmtrail.toml"
    config.write_text('[store]\nurl = "chdb:///from/file"\npassword_env = "CH_PASSWORD"\n')
    assert load_settings(config, env={}).store.url == "chdb:///from/file"
    env = {"LLMTRAIL_STORE__URL": "clickhouse://ops@ch1/calls"}
    settings = load_settings(config, env=env)
    assert settings.store.url == env["LLMTRAIL_STORE__URL"]
    assert settings.store.password_env == "CH_PASSWORD"
    flagged = load_settings(config, env=env, overrides={"store": "duckdb:///from/flag.duckdb"})
    assert flagged.store.url == "duckdb:///from/flag.duckdb"
    assert flagged.store.password_env == "CH_PASSWORD"  # the flag sets the URL alone
    unflagged = load_settings(config, env=env, overrides={"store": None})
    assert unflagged.store.url == env["LLMTRAIL_STORE__URL"]


def test_an_unknown_store_setting_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "llmtrail.toml"
    config.write_text('[store]\nurl = "chdb:///x"\npassword = "nope"\n')
    with pytest.raises(ConfigError, match=r"\[store\].*password"):
        load_settings(config, env={})


def test_a_missing_password_variable_is_a_config_error(tmp_path: Path) -> None:
    settings = load_settings(
        None,
        env={
            "LLMTRAIL_STORE__URL": "clickhouse://ops@127.0.0.1:1/calls",
            "LLMTRAIL_STORE__PASSWORD_ENV": "NOT_SET_ANYWHERE",
        },
        overrides={"data_dir": tmp_path},
    )
    with pytest.raises(ConfigError, match=r"password_env: \$NOT_SET_ANYWHERE is not set"):
        open_stores(settings, env={})


def test_an_unreachable_clickhouse_is_unavailable_naming_it(tmp_path: Path) -> None:
    settings = load_settings(
        None,
        env={"LLMTRAIL_STORE__URL": "clickhouse://ops@127.0.0.1:1/calls"},
        overrides={"data_dir": tmp_path},
    )
    with pytest.raises(Unavailable, match=r"clickhouse://ops@127\.0\.0\.1:1/calls"):
        open_stores(settings, env={})


def test_duckdb_reads_on_another_engine_answer_unavailable(tmp_path: Path) -> None:
    settings = load_settings(None, env={}, overrides={"data_dir": tmp_path})
    stores = open_stores(settings)
    try:
        assert stores.engine == "duckdb" and stores.duckdb is not None
        elsewhere = replace(stores, location=parse_store_url("chdb:///elsewhere", tmp_path))
        stand_in = NotOnThisEngine(elsewhere)
        assert stand_in.available and stand_in.schema == stores.schema
        for attempt in (lambda: stand_in.read(len), lambda: stand_in.write(len)):
            with pytest.raises(Unavailable, match="not available yet on the store chdb://"):
                attempt()
        with pytest.raises(Unavailable):
            _ = stand_in.path
        stand_in.close()  # closes nothing: the stores are still open
        assert stores.records.committed_position() is None
    finally:
        stores.close()
