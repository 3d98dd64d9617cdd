"""Evaluation: the report's mDice/mIoU, the PraNet toolbox metrics and prediction figures."""
