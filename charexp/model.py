"""CharLSTM: embedding -> nn.LSTM (cuDNN on CUDA) -> linear head over the vocabulary."""

from __future__ import annotations

import torch
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

    @classmethod
    def from_config(cls, cfg: Config, vocab_size: int) -> "CharLSTM":
        return cls(vocab_size, embed=cfg.embed, hidden=cfg.hidden, layers=cfg.layers, dropout=cfg.dropout)


def configure_cuda() -> None:
    """TF32 matmuls and cuDNN convolutions/RNNs: the usual speed/precision trade-off for training."""
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise CharexpError(f"device '{name}' was asked for but CUDA is not available here; use device: auto or cpu")
    if name == "mps" and not torch.backends.mps.is_available():
        raise CharexpError("device 'mps' was asked for but MPS is not available here; use device: auto or cpu")
    return torch.device(name)
