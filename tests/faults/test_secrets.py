"""A W&B API key in the environment is never written: not in runs/, checkpoints, the artifact store, the W&B
offline run files, nor the printed config and output of train.py and sample.py."""

from __future__ import annotations

import base64

from foundation import python_script

FAKE_KEY = "local-" + "5ec2e7" * 6 + "a1b2"  # shaped like a W&B API key; fake, and offline so it is never sent


def test_a_fake_api_key_appears_nowhere(fault_config, tmp_path):
    env = {"WANDB_API_KEY": FAKE_KEY}
    train = python_script("train.py", ["--config", str(fault_config(wandb_mode="offline"))], cwd=tmp_path, env=env)
    assert train.returncode == 0, train.stderr[-3000:]
    # the printed config is part of what is checked
    assert "charexp config" in train.stderr and "wandb_mode" in train.stderr
    sample = python_script("sample.py", ["--artifact", "best-test-loss", "KS", "--seed", "1"], cwd=tmp_path, env=env)
    assert sample.returncode == 0, sample.stderr

    forms = [FAKE_KEY.encode(), base64.b64encode(FAKE_KEY.encode()), FAKE_KEY[6:].encode()]
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.suffix == ".wandb" for p in written) and any(p.name == "model.safetensors" for p in written)
    assert any(p.name == "state.pt" for p in written) and any(p.name == "config.yaml" for p in written)
    for path in written:
        data = path.read_bytes()
        assert not any(form in data for form in forms), f"the API key is in {path}"
    for text in (train.stdout, train.stderr, sample.stdout, sample.stderr):
        assert FAKE_KEY not in text and FAKE_KEY[6:] not in text
