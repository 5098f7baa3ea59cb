"""Secrets never leave the process: a credential passed through --set and through a config file appears in
no file the run writes (raw bytes, and every string of every Delta table read back) and in no log line."""

from __future__ import annotations

import logging
import subprocess
import sys

from deltalake import DeltaTable

from visitseg.ingest import sample_data
from visitseg.core.redact import MASK, SecretFilter, is_secret_key, redacted

SET_SECRET = "s3a-Secret-4f1c9e"
FILE_SECRET = "azureKey+77/QzX=="
EXTRA_SECRET = "plain-looking-value-31337"


def test_credential_like_keys_are_recognised():
    for key in ("spark.hadoop.fs.s3a.secret.key", "spark.hadoop.fs.s3a.access.key", "fs.azure.account.key.acct.dfs.core.windows.net",
                "db.password", "api_token", "gcp.credentials.json", "private_key_id", "fs.azure.sas.container.acct", "S3_SECRET_ACCESS_KEY"):
        assert is_secret_key(key), key
    for key in ("spark.sql.shuffle.partitions", "spark.kerberos.keytab.path.is.not", "sasl.mechanism", "model.k_max", "visas"):
        assert not is_secret_key(key), key
    assert is_secret_key("my.api.thing", extra=["api.thing"])


def test_redacted_masks_nested_values_and_keeps_the_rest():
    values = {"spark": {"conf": {"spark.hadoop.fs.s3a.secret.key": "x", "spark.ui.enabled": "false"}}, "model": {"k_max": 8}}
    assert redacted(values) == {"spark": {"conf": {"spark.hadoop.fs.s3a.secret.key": MASK, "spark.ui.enabled": "false"}}, "model": {"k_max": 8}}


def test_log_filter_masks_values_in_arguments():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "connecting with %s and %d", ("key=abc123", 5), None)
    SecretFilter(["abc123"]).filter(record)
    assert record.getMessage() == f"connecting with key={MASK} and 5"


def test_no_secret_in_any_file_the_run_writes_or_in_its_log(spark, tmp_path):
    data = tmp_path / "input"
    sample_data.write_sample(spark, "ga360", str(data), 400, days=2, seed=5, file_format="json")
    config = tmp_path / "secrets.toml"
    config.write_text(
        "[output]\nredact_keys = [\"my.api.thing\"]\n"
        "[spark.conf]\n"
        f'"spark.hadoop.fs.azure.account.key.acct.dfs.core.windows.net" = "{FILE_SECRET}"\n'
        f'"my.api.thing" = "{EXTRA_SECRET}"\n'
    )
    out = tmp_path / "out"
    args = [
        "run", "--input-format", "ga360", "--input", str(data), "--output", str(out), "--config", str(config),
        "--set", f"spark.conf.spark.hadoop.fs.s3a.secret.key={SET_SECRET}",
        "--set", "run.run_id=secrets", "--set", "model.k_min=2", "--set", "model.k_max=2",
    ]
    # Its own process, as a user runs it: the log is everything it prints, the JVM's lines included.
    done = subprocess.run([sys.executable, "-c", "import sys; from visitseg.cli import main; sys.exit(main())", *args], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    secrets = (SET_SECRET, FILE_SECRET, EXTRA_SECRET)
    assert "config:" in done.stderr and MASK in done.stderr  # the start-up line was logged, masked
    for secret in secrets:
        assert secret not in done.stdout and secret not in done.stderr
    files = [p for p in out.rglob("*") if p.is_file()]
    assert len(files) > 20
    for path in files:
        content = path.read_bytes()
        for secret in secrets:
            assert secret.encode() not in content, path
    for table in ("runs", "visit_features", "session_clusters", "cluster_centers", "k_diagnostics", "cluster_mix_daily"):
        strings = " ".join(str(v) for column in DeltaTable(str(out / table)).to_pyarrow_table().to_pylist() for v in column.values())
        for secret in secrets:
            assert secret not in strings, table
    assert f'"spark.hadoop.fs.s3a.secret.key": "{MASK}"' in DeltaTable(str(out / "runs")).to_pyarrow_table()["config_json"][0].as_py()
