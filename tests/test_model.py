"""CharLSTM shapes and device resolution (CHAREXP_TEST_DEVICE=cuda runs these on a GPU)."""

from __future__ import annotations

import pytest
import torch

from charexp.config import Config
from charexp.errors import CharexpError
from charexp.model import CharLSTM, resolve_device

from foundation import DEVICE

no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")


def test_shapes_and_zero_start_state():
    torch.manual_seed(0)
    model = CharLSTM(vocab_size=11, embed=5, hidden=7, layers=3, dropout=0.2).to(DEVICE).eval()
    tokens = torch.randint(0, 11, (4, 9), device=DEVICE)
    logits, (h, c) = model(tokens)
    assert logits.shape == (4, 9, 11)
    assert h.shape == c.shape == (3, 4, 7)
    zeros = torch.zeros(3, 4, 7, device=DEVICE)
    again, _ = model(tokens, (zeros, zeros))
    torch.testing.assert_close(logits, again)  # state=None starts from zeros
    # carrying the state over a split sequence gives the same outputs as one call
    first, state = model(tokens[:, :4])
    second, _ = model(tokens[:, 4:], state)
    torch.testing.assert_close(torch.cat([first, second], dim=1), logits, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("layers", [1, 3])
def test_one_step_equals_the_sequence_path(layers):
    torch.manual_seed(1)
    model = CharLSTM(vocab_size=11, embed=5, hidden=7, layers=layers, dropout=0.3).to(DEVICE).eval()
    tokens = torch.randint(0, 11, (4, 6), device=DEVICE)
    logits, state = model(tokens[:, :5])
    expected, (h, c) = model(tokens[:, 5:], state)
    stepped, (h_step, c_step) = model.step(tokens[:, 5], state)
    torch.testing.assert_close(stepped, expected[:, 0], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(h_step, h, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(c_step, c, rtol=1e-5, atol=1e-6)


def test_step_follows_loaded_and_moved_weights_and_adds_no_state_dict_keys():
    torch.manual_seed(2)
    model = CharLSTM(vocab_size=11, embed=5, hidden=7, layers=2).eval()
    keys = set(model.state_dict())
    zeros = (torch.zeros(2, 3, 7), torch.zeros(2, 3, 7))
    token = torch.tensor([1, 4, 9])
    model.step(token, zeros)  # builds the cells once
    assert set(model.state_dict()) == keys and not any("cell" in name for name, _ in model.named_parameters())
    other = CharLSTM(vocab_size=11, embed=5, hidden=7, layers=2).eval()
    model.load_state_dict(other.state_dict())
    torch.testing.assert_close(model.step(token, zeros)[0], other.step(token, zeros)[0])
    model.lstm.weight_hh_l1 = torch.nn.Parameter(torch.zeros(28, 7))  # a replaced Parameter is picked up too
    torch.testing.assert_close(model.step(token, zeros)[0], model(token[:, None], zeros)[0][:, 0])
    model.to(DEVICE)
    state = tuple(t.to(DEVICE) for t in zeros)
    torch.testing.assert_close(model.step(token.to(DEVICE), state)[0], model(token[:, None].to(DEVICE), state)[0][:, 0])


def test_from_config_uses_the_architecture_keys():
    cfg = Config(layers=2, hidden=24, embed=6, dropout=0.1)
    model = CharLSTM.from_config(cfg, vocab_size=30)
    assert model.lstm.num_layers == 2 and model.lstm.hidden_size == 24 and model.embedding.embedding_dim == 6
    assert model.head.out_features == 30 and model.lstm.dropout == 0.1
    assert model.lstm.batch_first


def test_auto_device_picks_cuda_only_when_there_is_one():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device("cpu") == torch.device("cpu")


def test_test_device_resolves():
    assert resolve_device(DEVICE).type == torch.device(DEVICE).type


@no_cuda
@pytest.mark.parametrize("name", ["cuda", "cuda:0", "cuda:3"])
def test_cuda_without_cuda_is_a_clear_error(name):
    with pytest.raises(CharexpError) as err:
        resolve_device(name)
    assert name in str(err.value) and "cpu" in str(err.value) and "\n" not in str(err.value)


@no_cuda
def test_cuda_request_without_cuda_starts_no_run(tmp_path, tiny_config):
    import wandb

    from foundation import run_main

    try:
        with pytest.raises(CharexpError, match="CUDA"):
            run_main(["--config", str(tiny_config(device="cuda"))])
        assert not (tmp_path / "runs").exists(), "a run directory was created"
        assert not list(tmp_path.glob("wandb/*run-*")), "a W&B run was started"
    finally:  # the leaked run would otherwise be handed back by the next wandb.init in this process
        if wandb.run is not None:
            wandb.run.finish(exit_code=1)
        wandb.teardown()
