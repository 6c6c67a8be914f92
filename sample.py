"""Sample from a trained CharLSTM: python sample.py --artifact best-test-loss KSKSKS"""

from charexp.sample.command import cli

if __name__ == "__main__":
    cli()
