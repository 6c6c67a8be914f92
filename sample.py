"""Sample from a trained CharLSTM: python sample.py --artifact best-test-loss KSKSKS"""

from charexp.sample import cli

if __name__ == "__main__":
    cli()
