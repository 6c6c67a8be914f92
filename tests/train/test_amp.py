"""bf16 autocast (`amp: true`): the dtype plumbing, checked on CPU (the same code path runs on CUDA)."""

from __future__ import annotations

import pytest
import torch

from charexp.data.batching import EncodedSplit
from charexp.data.corpus import load_corpus
from charexp.errors import CharexpError
from charexp.model import CharLSTM, cpu_has_bf16_lstm
from charexp.tracking.rundir import RunDir
from charexp.train.evaluate import Evaluator, masked_loss_sum
from charexp.train.step import make_autocast

from foundation import DEVICE, run_main

NO_BF16_LSTM = DEVICE == "cpu" and not cpu_has_bf16_lstm()
needs_bf16_lstm = pytest.mark.skipif(
    NO_BF16_LSTM, reason="this CPU has no bf16 LSTM (oneDNN needs AVX-512); amp is refused here, see below")


def test_amp_on_a_cpu_without_a_bf16_lstm_is_one_sentence(tiny_config):
    if not NO_BF16_LSTM:
        pytest.skip("this CPU runs a bf16 LSTM: amp works here (the tests below)")
    with pytest.raises(CharexpError, match="amp: true needs a bf16 LSTM, which this CPU does not have"):
        run_main(["--config", str(tiny_config(amp=True, wandb_mode="disabled"))])



@needs_bf16_lstm
def test_autocast_computes_in_bf16_and_the_loss_in_fp32():
    device = torch.device(DEVICE)
    model = CharLSTM(20, embed=8, hidden=16, layers=2).to(device)
    tokens = torch.randint(20, (4, 9), device=device)
    with make_autocast(device, amp=True):
        logits, _ = model(tokens[:, :-1])
        loss = masked_loss_sum(logits, tokens[:, 1:])
    assert logits.dtype == torch.bfloat16
    assert loss.dtype == torch.float32
    with make_autocast(device, amp=False):
        full, _ = model(tokens[:, :-1])
    assert full.dtype == torch.float32
    assert torch.allclose(logits.float(), full, atol=0.1)  # same function, lower precision


@needs_bf16_lstm
def test_eval_under_autocast_matches_fp32_within_bf16_noise(tiny_csv):
    device = torch.device(DEVICE)
    corpus = load_corpus(tiny_csv)
    torch.manual_seed(0)
    model = CharLSTM(len(corpus.vocab), embed=8, hidden=16).to(device)
    split = EncodedSplit(corpus.test, corpus.vocab, device)
    fp32 = Evaluator(split)(model, torch.Generator(device=device).manual_seed(0))
    bf16 = Evaluator(split, make_autocast(device, amp=True))(model, torch.Generator(device=device).manual_seed(0))
    assert isinstance(bf16["test/loss"], float)
    assert abs(bf16["test/loss"] - fp32["test/loss"]) < 0.02 * fp32["test/loss"]


@needs_bf16_lstm
def test_a_run_with_amp_learns(tiny_config, tmp_path):
    code, _ = run_main(["--config", str(tiny_config(amp=True, epochs=2, wandb_mode="disabled"))])
    assert code == 0
    (run,) = [RunDir(tmp_path / "runs", p.name) for p in (tmp_path / "runs").iterdir()]
    losses = [row["test/loss"] for row in run.history() if "test/loss" in row]
    assert len(losses) == 2 and losses[1] < losses[0]
    assert run.read_config()["amp"] is True
