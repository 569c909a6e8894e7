"""Fuzz (atheris, coverage-guided): each target of atheris_targets.py in its own process for a number of runs;
0 crashes (atheris exits non-zero and saves the input on any exception that is not tagd's own), memory within
libFuzzer's RSS limit. Skipped where atheris is not installed (the test extras install it on x86_64)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import pytest

from .fuzz_inputs import EXAMPLE_CONFIG, GOOD_BODIES, ROOT
from .support import scaled

pytestmark = pytest.mark.faults

RUNS = {"serial": 20_000, "keys": 20_000, "config": 4_000, "replies": 20_000}  # at the CI scale
RSS_LIMIT_MB = 512


@pytest.mark.parametrize("target", ["serial", "keys", "config", "replies"])
def test_atheris_finds_no_crash(target, tmp_path, scale, figures):
    pytest.importorskip("atheris")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    if target == "config":
        shutil.copy(EXAMPLE_CONFIG, corpus / "example.toml")  # start from a whole, valid file
    if target == "replies":
        for call in ("me", "roster", "checkins"):  # the contract's replies
            (corpus / f"{call}.json").write_text(json.dumps(GOOD_BODIES[call]))
    runs = scaled(RUNS[target], scale)
    seed = ["-seed=1"] if scale <= 1 else []  # the CI scale repeats itself; longer runs explore anew
    proc = subprocess.run([sys.executable, "-m", "tests.faults.atheris_targets", target, f"-runs={runs}",
                           f"-rss_limit_mb={RSS_LIMIT_MB}", "-timeout=10", "-max_len=8192",
                           f"-artifact_prefix={tmp_path}/", *seed, str(corpus)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    log = proc.stderr
    done = re.search(r"Done (\d+) runs in (\d+) second", log)
    peak = max((int(mb) for mb in re.findall(r"rss: (\d+)Mb", log)), default=0)
    coverage = max((int(c) for c in re.findall(r"cov: (\d+)", log)), default=0)
    figures.put("inputs tried", int(done.group(1)) if done else None)
    figures.put("crashes", 0 if proc.returncode == 0 else 1)
    figures.put("peak RSS (MiB)", peak)
    figures.put("coverage (edges)", coverage)
    assert proc.returncode == 0 and done, f"atheris found a crash:\n{log[-4000:]}"
    assert peak < RSS_LIMIT_MB
