"""The library room by room: terms, the penalty model, period maths, evidence, history, audit, build, chains,
the command's pieces, and the layout itself (test_architecture.py)."""
