from pathlib import Path

import pytest
from conftest import FakeOpener, make_mnist_files
from typer.testing import CliRunner

from dnnbench.cli import app
from dnnbench.data import mnist
from dnnbench.data.mnist import FILES

runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, ["data", *map(str, args)])


def one_error_line(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert "Traceback" not in result.output
    return lines[0]


@pytest.fixture
def trusted_mnist(fake_mnist, monkeypatch) -> Path:
    """The generated files of ``fake_mnist`` made canonical for the duration of a test."""
    root, hashes = fake_mnist
    monkeypatch.setitem(mnist.SHA256, "mnist", hashes)
    return root


@pytest.mark.parametrize("cmd", [[], ["list"], ["verify"], ["fetch"], ["info"]])
def test_help(cmd):
    result = run(*cmd, "--help")
    assert result.exit_code == 0 and "Usage" in result.stdout


def test_data_dir_option_documented():
    assert "mnist/ and fashion-mnist/" in " ".join(run("list", "--help").stdout.split())


def test_list(data_env, fake_mnist):
    root, _ = fake_mnist
    result = run("list")
    assert result.exit_code == 0
    for word in ("mnist", "fashion-mnist", "digits", "synthetic", "missing", "bundled"):
        assert word in result.stdout
    result = run("list", "--data-dir", root)
    assert result.exit_code == 0 and "found:" in result.stdout


def test_verify_ok(trusted_mnist):
    result = run("verify", "mnist", "--data-dir", trusted_mnist)
    assert result.exit_code == 0, result.output
    assert result.stdout.count("│ ok ") == 4 and "MISMATCH" not in result.stdout


def test_verify_corrupted_copy_exits_1_with_one_line(trusted_mnist):
    path = trusted_mnist / "mnist" / FILES[0]
    path.write_bytes(path.read_bytes()[:-10])
    result = run("verify", "mnist", "--data-dir", trusted_mnist)
    assert result.exit_code == 1
    line = one_error_line(result)
    assert "1 of 4 files" in line and FILES[0] in line and "dnnbench data fetch mnist" in line
    assert "MISMATCH" in result.stdout


def test_verify_an_unreadable_file_exits_1_with_one_line(trusted_mnist, monkeypatch):
    """(As root no permission denies a read: the read itself fails here.)"""
    path = trusted_mnist / "mnist" / FILES[0]
    real = mnist.sha256_file

    def deny(p):
        if Path(p) == path:
            raise PermissionError(13, "Permission denied", str(p))
        return real(p)

    monkeypatch.setattr(mnist, "sha256_file", deny)
    result = run("verify", "mnist", "--data-dir", trusted_mnist)
    assert result.exit_code == 1 and "Traceback" not in result.output
    line = one_error_line(result)
    assert "cannot read" in line and "Permission denied" in line


def test_verify_default_checks_present_sets(trusted_mnist):
    result = run("verify", "--data-dir", trusted_mnist)
    assert result.exit_code == 0 and "mnist:" in result.stdout
    assert "fashion-mnist" not in result.stdout


def test_verify_nothing_present(data_env):
    result = run("verify")
    assert result.exit_code == 0 and "Nothing to verify" in result.stderr


def test_verify_explicit_missing_exits_2(data_env, tmp_path):
    result = run("verify", "fashion-mnist", "--data-dir", tmp_path)
    assert result.exit_code == 2
    assert "DNNBENCH_DATA_DIR" in one_error_line(result)


@pytest.mark.parametrize("cmd", ["verify", "fetch", "info"])
def test_unknown_name_exits_2(cmd):
    result = run(cmd, "cifar10")
    assert result.exit_code == 2
    assert "mnist, fashion-mnist, digits, synthetic" in one_error_line(result)


def test_verify_rejects_bundled_set():
    result = run("verify", "digits")
    assert result.exit_code == 2 and "mnist or fashion-mnist" in one_error_line(result)


def test_fetch_into_cache(tmp_path, data_env, monkeypatch):
    hashes = make_mnist_files(tmp_path / "src")
    files = {f: (tmp_path / "src" / f).read_bytes() for f in FILES}
    monkeypatch.setitem(mnist.SHA256, "mnist", hashes)
    monkeypatch.setitem(mnist.MIRRORS, "mnist", ("https://a.invalid/", "https://b.invalid/"))
    monkeypatch.setattr(mnist, "_default_opener", FakeOpener(files, broken=["https://a."]))
    result = run("fetch", "mnist")
    assert result.exit_code == 0, result.output
    assert "4 files verified" in result.stdout
    assert sorted(p.name for p in (data_env / "mnist").iterdir()) == sorted(FILES)


def test_fetch_failure_exits_1(data_env, monkeypatch):
    monkeypatch.setitem(mnist.MIRRORS, "mnist", ("https://a.invalid/",))
    monkeypatch.setattr(mnist, "_default_opener", FakeOpener({}, broken=["https://"]))
    result = run("fetch", "mnist")
    assert result.exit_code == 1 and "could not download" in one_error_line(result)
    assert not any((data_env / "mnist").glob("*"))


def test_fetch_bundled_is_a_no_op():
    result = run("fetch", "digits")
    assert result.exit_code == 0 and "needs no download" in result.stdout


def test_info_digits():
    result = run("info", "digits")
    assert result.exit_code == 0
    for text in ("1257", "180", "360", "64 features", "source: scikit-learn"):
        assert text in result.stdout


def test_info_mnist_family(tmp_path, data_env, monkeypatch):
    hashes = make_mnist_files(tmp_path / "fashion-mnist", n_train=5020, n_test=30, side=2)
    monkeypatch.setitem(mnist.SHA256, "fashion-mnist", hashes)
    result = run("info", "fashion-mnist", "--data-dir", tmp_path)
    assert result.exit_code == 0, result.output
    cells = [line.split("│") for line in result.stdout.splitlines() if line.startswith("│")]
    rows = {c[2].strip(): c[3:6] for c in cells}
    assert [c.strip() for c in rows["Ankle boot"]] == ["2", "500", "3"]  # train, val, test
    assert [c.strip() for c in rows[""]] == ["20", "5000", "30"]


def test_info_missing_exits_2_and_corrupt_exits_1(data_env, fake_mnist):
    result = run("info", "mnist")
    assert result.exit_code == 2 and "--dataset digits" in one_error_line(result)
    root, _ = fake_mnist  # generated files do not match the canonical hashes
    result = run("info", "mnist", "--data-dir", root)
    assert result.exit_code == 1 and "SHA-256 mismatch" in one_error_line(result)
