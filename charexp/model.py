"""CharLSTM: embedding -> nn.LSTM (cuDNN on CUDA) -> linear head over the vocabulary.

`forward` reads whole sequences (training, eval, primes); `step` reads one character per row
through LSTMCells that share the LSTM's weights, which is what a sampler calls in its loop.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn

from charexp.config import Config
from charexp.errors import CharexpError

State = tuple[torch.Tensor, torch.Tensor]


class CharLSTM(nn.Module):
    def __init__(self, vocab_size: int, embed: int = 64, hidden: int = 200, layers: int = 2, dropout: float = 0.0):
        super().__init__()
        self.vocab_size, self.hidden, self.layers = vocab_size, hidden, layers
        self.embedding = nn.Embedding(vocab_size, embed)
        self.lstm = nn.LSTM(embed, hidden, num_layers=layers, dropout=dropout if layers > 1 else 0.0, batch_first=True)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(hidden, vocab_size)

    def forward(self, tokens: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        """tokens [B, T] -> logits [B, T, V]. `state=None` starts from zeros, as every utterance does."""
        out, state = self.lstm(self.embedding(tokens), state)
        return self.head(self.drop(out)), state

    def step(self, token: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """token [B] -> logits [B, V]; the same result as `forward(token[:, None], state)`, faster for one
        step: nn.LSTM's sequence path costs ~2x on CPU, and an LSTMCell is one fused kernel per layer on CUDA."""
        x, hs, cs = self.embedding(token), [], []
        for layer, cell in enumerate(self._cells()):
            if layer > 0:
                x = F.dropout(x, self.lstm.dropout, self.training)  # nn.LSTM's dropout sits between layers
            h, c = cell(x, (state[0][layer], state[1][layer]))
            hs.append(h)
            cs.append(c)
            x = h
        return self.head(self.drop(x)), (torch.stack(hs), torch.stack(cs))

    def _cells(self) -> list[nn.LSTMCell]:
        """One LSTMCell per layer holding the LSTM's own Parameters. They are built on the meta device (nothing
        is allocated) and kept outside the module tree, so the state dict and `.to()` see each weight once."""
        cells = self.__dict__.get("_step_cells")
        names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
        if cells and all(getattr(cell, n) is getattr(self.lstm, f"{n}_l{k}")
                         for k, cell in enumerate(cells) for n in names):
            return cells
        cells = []
        for layer in range(self.layers):
            cell = nn.LSTMCell(self.lstm.input_size if layer == 0 else self.hidden, self.hidden, device="meta")
            for name in names:
                setattr(cell, name, getattr(self.lstm, f"{name}_l{layer}"))
            cells.append(cell)
        self.__dict__["_step_cells"] = cells
        return cells

    @classmethod
    def from_config(cls, cfg: Config, vocab_size: int) -> "CharLSTM":
        return cls(vocab_size, embed=cfg.embed, hidden=cfg.hidden, layers=cfg.layers, dropout=cfg.dropout)


def configure_cuda() -> None:
    """TF32 matmuls and cuDNN convolutions/RNNs: the usual speed/precision trade-off for training."""
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True


def configure_cpu() -> bool:
    """Flush denormal floats to zero. A rate high enough to saturate the LSTM's gates fills activations and
    gradients with denormals, which x86 CPUs compute in microcode: an lr-3e-2 run slowed about 14x (E4). Returns
    whether the CPU supports it (x86 with SSE3)."""
    return torch.set_flush_denormal(True)


@functools.lru_cache(maxsize=None)
def cpu_has_bf16_lstm() -> bool:
    """Whether nn.LSTM runs under bf16 autocast on this CPU. oneDNN has no bf16 LSTM for CPUs without AVX-512
    (an AVX2 EPYC raises "could not create a primitive descriptor for the LSTM forward propagation primitive")."""
    try:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            nn.LSTM(4, 4, batch_first=True)(torch.zeros(1, 2, 4))
    except RuntimeError:
        return False
    return True


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise CharexpError(f"device '{name}' was asked for but CUDA is not available here; use device: auto or cpu")
    if name == "mps" and not torch.backends.mps.is_available():
        raise CharexpError("device 'mps' was asked for but MPS is not available here; use device: auto or cpu")
    return torch.device(name)


def training_device(name: str, amp: bool) -> torch.device:
    """The device to train on, refusing bf16 autocast where the CPU has no bf16 LSTM."""
    device = resolve_device(name)
    if amp and device.type == "cpu" and not cpu_has_bf16_lstm():
        raise CharexpError("amp: true needs a bf16 LSTM, which this CPU does not have (oneDNN's needs AVX-512); "
                           "set amp: false (bf16 autocast is meant for CUDA)")
    return device
