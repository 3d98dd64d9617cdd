"""The PraNet evaluation toolbox's metrics (meanDic, maxDic, S/E-measure, wF, MAE) via pysodmetrics.

The toolbox convention, followed here:
- ground truth: a pixel is foreground when its 0..255 value is > 128 (we receive it as bool);
- prediction: resized to the GT size (done by the caller), min-max normalised to [0, 1] and
  stored as 0..255 grey levels, as PraNet's test script saves its PNGs. A constant map is left
  unnormalised (pysodmetrics' `mapminmax` does the same), so an all-zero map stays background;
- Dice and IoU are computed at the 256 thresholds 0..255 (`grey >= t`) and averaged over images;
  "mean" is then the mean over thresholds and "max" the maximum over thresholds. At t = 0 every
  pixel is foreground, which is part of the toolbox's definition;
- an empty ground truth scores Dice = IoU = 0 at every threshold, even for an empty prediction
  (unlike `metrics.EMPTY_MASK_CONVENTION`), and weighted F-measure 0;
- E-measure divides by (pixels - 1) as the MATLAB code does, so a perfect map scores slightly above 1.
"""

import numpy as np
import py_sod_metrics

TOOLBOX_CONVENTION = (
    "PraNet toolbox (pysodmetrics): GT > 128; prediction at GT size, min-max normalised, 0..255 "
    "grey levels; Dice/IoU at thresholds 0..255 averaged over images, then mean ('mean_') or max "
    "('max_') over thresholds; an empty GT scores Dice = IoU = 0."
)

RESULT_KEYS = (
    "mean_dice",
    "max_dice",
    "mean_iou",
    "max_iou",
    "s_measure",
    "mean_e_measure",
    "max_e_measure",
    "weighted_f_measure",
    "mae",
)


class ToolboxMetrics:
    """Accumulate the PraNet toolbox metrics image by image; read them with `results()`."""

    def __init__(self) -> None:
        self._dice_iou = py_sod_metrics.FmeasureV2(
            metric_handlers={
                "dice": py_sod_metrics.DICEHandler(with_dynamic=True, with_adaptive=False),
                "iou": py_sod_metrics.IOUHandler(with_dynamic=True, with_adaptive=False),
            }
        )
        self._s_measure = py_sod_metrics.Smeasure()
        self._e_measure = py_sod_metrics.Emeasure()
        self._weighted_f_measure = py_sod_metrics.WeightedFmeasure()
        self._mae = py_sod_metrics.MAE()
        self.n_images = 0

    def step(self, probability: np.ndarray, gt: np.ndarray) -> None:
        """Add one image: a float probability map in [0, 1] and a bool mask of the same (H, W)."""
        _check_pair(probability, gt)
        grey_prediction = to_grey_levels(probability)
        grey_gt = gt.astype(np.uint8) * 255
        for metric in (
            self._dice_iou,
            self._s_measure,
            self._e_measure,
            self._weighted_f_measure,
            self._mae,
        ):
            # normalize=True applies the toolbox's own steps: GT > 128, prediction / 255, min-max.
            metric.step(grey_prediction, grey_gt, normalize=True)
        self.n_images += 1

    def results(self) -> dict[str, float]:
        """Return the metrics over all images seen so far, keyed by `RESULT_KEYS`."""
        if self.n_images == 0:
            raise ValueError("ToolboxMetrics.results: no image was added with step().")
        dice_iou = self._dice_iou.get_results()
        dice_curve = dice_iou["dice"]["dynamic"]
        iou_curve = dice_iou["iou"]["dynamic"]
        e_measure_curve = self._e_measure.get_results()["em"]["curve"]
        return {
            "mean_dice": float(dice_curve.mean()),
            "max_dice": float(dice_curve.max()),
            "mean_iou": float(iou_curve.mean()),
            "max_iou": float(iou_curve.max()),
            "s_measure": float(self._s_measure.get_results()["sm"]),
            "mean_e_measure": float(e_measure_curve.mean()),
            "max_e_measure": float(e_measure_curve.max()),
            "weighted_f_measure": float(self._weighted_f_measure.get_results()["wfm"]),
            "mae": float(self._mae.get_results()["mae"]),
        }


def to_grey_levels(probability: np.ndarray) -> np.ndarray:
    """Min-max normalise a probability map and round it to 0..255 grey levels (uint8)."""
    probability = probability.astype(np.float64)
    low, high = probability.min(), probability.max()
    if high > low:
        probability = (probability - low) / (high - low)
    return np.round(probability * 255).astype(np.uint8)


def _check_pair(probability: np.ndarray, gt: np.ndarray) -> None:
    """Raise when a prediction/GT pair does not follow `ToolboxMetrics.step`'s contract."""
    if gt.dtype != bool:
        raise TypeError(f"ToolboxMetrics.step: gt must be a bool mask, got {gt.dtype}.")
    if not np.issubdtype(probability.dtype, np.floating):
        raise TypeError(
            f"ToolboxMetrics.step: probability must be float in [0, 1], got {probability.dtype}."
        )
    if probability.ndim != 2 or probability.shape != gt.shape:
        raise ValueError(
            f"ToolboxMetrics.step: probability {probability.shape} and gt {gt.shape} must be the "
            "same (H, W); resize the prediction to the mask's original size first."
        )
    if not np.isfinite(probability).all() or probability.min() < 0 or probability.max() > 1:
        raise ValueError("ToolboxMetrics.step: probability values must be finite and in [0, 1].")
