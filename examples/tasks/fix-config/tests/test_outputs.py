import configparser
from pathlib import Path


def load():
    cp = configparser.ConfigParser()
    cp.read("/app/service.ini")
    return cp


def test_port():
    assert load()["server"]["port"] == "8080"


def test_workers():
    assert load()["server"]["workers"] == "4"


def test_rest_unchanged():
    cp = load()
    assert cp["server"]["host"] == "0.0.0.0"
    assert cp["logging"]["level"] == "info"
    assert "# port = 80 stays a comment" in Path("/app/service.ini").read_text()


def test_build_step_ran():
    assert Path("/app/run/name").read_text().strip() == "demo"
