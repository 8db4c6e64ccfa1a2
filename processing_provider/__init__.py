"""The ``minesar`` Processing provider: one thin module per algorithm around core/ and models/."""
