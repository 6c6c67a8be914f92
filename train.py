"""Train a character-level LSTM: python train.py --config configs/quick.yaml [--key=value ...]"""

from charexp.train import cli

if __name__ == "__main__":
    cli()
