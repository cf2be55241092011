"""What the tests share: the deployed world, agreement fixtures, hypothesis strategies, a dev node."""
