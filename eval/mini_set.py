"""Where the shipped French->English evaluation set lives (built by `python -m training.demo.mini_set`)."""

from pathlib import Path

HERE = Path(__file__).parent / "data" / "fr_en_mini"
