"""Train a character-level LSTM: python train.py --config configs/quick.yaml [--key=value ...]"""

from charexp.train.main import cli

if __name__ == "__main__":
    cli()
