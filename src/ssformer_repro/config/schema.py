"""The schema of every parameter block: one pydantic model per block, checked before any work.

"Name + options" choices (a schedule, a loss, a split strategy) are discriminated unions: each
choice has its own options, an option of another choice is an error naming it, and choosing
another choice replaces the options of the one it replaces wherever the choice is made (an
environment file, conf/local, --params, a run's override; see `merge_settings`).

Names of backbones, heads, layouts and sources come from the registries of the code that uses
them (models, polyps), read when a value is checked.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveInt,
    field_validator,
    model_validator,
)

# The keys that name the chosen option set of a "name + options" block.
CHOICE_KEYS = ("name", "strategy")
AUTO = "auto"
AmpMode = Literal["auto", "bf16", "fp16", "off"]
BoolOrAuto = bool | Literal["auto"]
Fraction = Annotated[float, Field(ge=0, lt=1)]
Probability = Annotated[float, Field(ge=0, le=1)]
T = TypeVar("T")
Pair = Annotated[list[T], Field(min_length=2, max_length=2)]  # YAML has lists, not tuples
Triple = Annotated[list[T], Field(min_length=3, max_length=3)]


class Settings(BaseModel):
    """A parameter block: unknown keys are errors (typos), and values are taken strictly (an
    integer is a valid float, but a string is not a number and `true` is not an integer)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


# --- training ---------------------------------------------------------------------------------


class PolySchedule(Settings):
    """The report's PolynomialLRDecay; with end = base (its parameters) the rate is constant."""

    name: Literal["poly"]
    max_decay_steps: PositiveInt = 40
    end_learning_rate: NonNegativeFloat = 1e-4
    power: float = 1.0


class WarmupStepSchedule(Settings):
    """The official script's linear warm-up, then StepLR."""

    name: Literal["warmup_step"]
    warmup_epochs: NonNegativeInt = 1
    step_size: PositiveInt = 200
    gamma: Annotated[float, Field(gt=0)] = 0.1


Schedule = Annotated[PolySchedule | WarmupStepSchedule, Field(discriminator="name")]


class BceDiceLoss(Settings):
    """BCE-with-logits plus soft Dice per image."""

    name: Literal["bce_dice"]
    bce_weight: NonNegativeFloat = 1.0
    dice_weight: NonNegativeFloat = 1.0
    smooth: Annotated[float, Field(gt=0)] = 1.0


class StructureLoss(Settings):
    """PraNet's weighted BCE + weighted IoU."""

    name: Literal["structure"]
    kernel_size: PositiveInt = 31
    edge_weight: NonNegativeFloat = 5.0
    smooth: Annotated[float, Field(gt=0)] = 1.0


Loss = Annotated[BceDiceLoss | StructureLoss, Field(discriminator="name")]


class TrainingSettings(Settings):
    """One training run. "auto" follows the device (on for CUDA, off for CPU), except `compile`,
    whose "auto" is off everywhere until a GPU measurement shows it pays back."""

    epochs: PositiveInt
    batch_size: PositiveInt
    lr: Annotated[float, Field(gt=0)] = 1e-4
    weight_decay: NonNegativeFloat = 0.01  # AdamW's default, which the official code keeps
    scheduler: Schedule = PolySchedule(name="poly")
    loss: Loss = BceDiceLoss(name="bce_dice")
    num_workers: NonNegativeInt = 0
    seed: NonNegativeInt = 0
    device: str = AUTO  # "auto", "cpu", "cuda" or "cuda:N"
    threads: PositiveInt | None = None  # torch's CPU threads; None: torch's default
    amp: AmpMode = AUTO
    channels_last: BoolOrAuto = AUTO
    fused_optimizer: BoolOrAuto = AUTO  # AdamW's fused kernel (CUDA and CPU)
    pin_memory: BoolOrAuto = AUTO
    compile: BoolOrAuto = AUTO
    val_threshold: Annotated[float, Field(gt=0, lt=1)] = 0.5
    val_every: PositiveInt = 1
    log_every: PositiveInt = 10
    # Write last.pt, best.pt and history.csv after an epoch only when this many seconds have
    # passed since the last write, and always after the final epoch. 0: after every epoch.
    checkpoint_every_seconds: NonNegativeFloat = 0.0
    distributed_backend: Literal["auto", "nccl", "gloo"] = AUTO
    # When last.pt was made from other settings or inputs: "refuse" (stop and say so) or
    # "restart" (move last.pt, best.pt and history.csv to superseded/<time>/, train afresh).
    on_changed_settings: Literal["refuse", "restart"] = "refuse"


# --- model ------------------------------------------------------------------------------------


class PldOptions(Settings):
    """Options of the PLD heads (`pld`, `pld_linear`)."""

    fusion: Literal["cat", "add"] = "cat"
    dropout: Probability = 0.1
    embed_dim: PositiveInt | None = None  # None: the head's default width


class SedOptions(Settings):
    """Options of SegFormer's SeD head."""

    dropout: Probability = 0.1
    embed_dim: PositiveInt | None = None


class HeadOptions(Settings):
    """Options per head."""

    pld: PldOptions = PldOptions()
    pld_linear: PldOptions = PldOptions()
    sed: SedOptions = SedOptions()


class ModelSettings(Settings):
    """Head options and ImageNet weights per backbone (a local file, a hub name, or null)."""

    head_options: HeadOptions = HeadOptions()
    pretrained: dict[str, str | None] | None = None

    @field_validator("pretrained")
    @classmethod
    def _known_backbones(cls, value: dict | None) -> dict | None:
        from ssformer_repro.models.backbones import available_backbones

        unknown = sorted(set(value or {}) - set(available_backbones()))
        if unknown:
            raise ValueError(f"unknown backbone(s) {unknown}; valid: {available_backbones()}")
        return value


# --- augmentation -----------------------------------------------------------------------------


class ScaleCrop(Settings):
    p: Probability = 0.5
    scale: Pair[Annotated[float, Field(gt=0)]] = [0.75, 1.25]


class Flip(Settings):
    horizontal_p: Probability = 0.5
    vertical_p: Probability = 0.5


class Rotate(Settings):
    p: Probability = 0.5
    angle: Pair[float] = [0, 359]


class Enhance(Settings):
    p: Probability = 0.5
    max_delta: NonNegativeFloat = 0.1


class DilationErosion(Settings):
    kernel_size: Pair[PositiveInt] = [2, 4]
    dilate_p: Probability = 0.3333
    erode_p: Probability = 0.3333

    @model_validator(mode="after")
    def _consistent(self) -> DilationErosion:
        if self.kernel_size[0] > self.kernel_size[1]:
            raise ValueError(f"kernel_size must be [low, high], got {list(self.kernel_size)}")
        if self.dilate_p + self.erode_p > 1:
            raise ValueError("dilate_p + erode_p must be at most 1")
        return self


class Normalize(Settings):
    mean: Triple[float] = [0.485, 0.456, 0.406]
    std: Triple[float] = [0.229, 0.224, 0.225]


class AugmentationSettings(Settings):
    """The official training augmentation, step by step, and the training size."""

    image_size: PositiveInt = 352
    scale_crop: ScaleCrop = ScaleCrop()
    flip: Flip = Flip()
    rotate: Rotate = Rotate()
    enhance: Enhance = Enhance()
    dilation_erosion: DilationErosion = DilationErosion()
    normalize: Normalize = Normalize()

    @field_validator("image_size")
    @classmethod
    def _multiple_of_32(cls, value: int) -> int:
        if value % 32:
            raise ValueError(
                f"must be a multiple of 32 (the backbones downsample by 32), e.g. 352; got {value}"
            )
        return value


# --- evaluation -------------------------------------------------------------------------------


# Test-time augmentation: none, or probabilities averaged over flipped copies (flipped back):
# hflip = the image and its horizontal flip; flips = also the vertical and the double flip.
TtaMode = Literal["none", "hflip", "flips"]


class EvaluationSettings(Settings):
    """Scoring of the test split: fp32 by default, as the study scored."""

    threshold: Annotated[float, Field(gt=0, lt=1)] = 0.5
    amp: AmpMode = "off"
    batch_size: PositiveInt = 16
    num_workers: NonNegativeInt = 0
    device: str = AUTO
    threads: PositiveInt | None = None  # torch's CPU threads; None: torch's default
    tta: TtaMode = "none"  # with flips, the tables show the scores without and with TTA
    # NSD's tolerance, a fraction of the frame's diagonal (docs/reference.md §5.5)
    nsd_tolerance: Annotated[float, Field(gt=0, lt=1)] = 0.005


# --- data -------------------------------------------------------------------------------------


class RandomSplit(Settings):
    """Sorted ids, test then validation carved out with scikit-learn (the FCBFormer recipe)."""

    strategy: Literal["random"]
    seed: int = 42
    val_fraction: Fraction = 0.1
    test_fraction: Fraction = 0.1


class IdListFiles(Settings):
    """Files of ids, one per line, relative to the project root."""

    train: str
    test: str
    val: str | None = None  # None: validation is carved out of train


class IdListsSplit(Settings):
    """Published id lists; without a val list, `val_fraction` of train is drawn with `seed`."""

    strategy: Literal["id_lists"]
    id_lists: IdListFiles
    seed: int = 42
    val_fraction: Fraction = 0.1


class PranetSplit(Settings):
    """PraNet protocol: TrainDataset (minus a validation part) for training, every test set."""

    strategy: Literal["pranet"]
    seed: int = 42
    val_fraction: Fraction = 0.1


class KFoldSplit(Settings):
    """K folds of the whole dataset; fold k tests on fold k (optionally grouped)."""

    strategy: Literal["kfold"]
    folds: Annotated[int, Field(ge=2)] = 5
    seed: int = 42
    val_fraction: Fraction = 0.1
    groups: str | None = None  # an `id,group` CSV: each group stays within one fold


Split = Annotated[
    RandomSplit | IdListsSplit | PranetSplit | KFoldSplit, Field(discriminator="strategy")
]


class SyntheticSettings(Settings):
    """The generator of a synthetic dataset (polyps/synthetic.py)."""

    n_images: PositiveInt  # of the TrainDataset, for the pranet layout
    seed: NonNegativeInt = 0
    min_size: Annotated[int, Field(ge=32)] = 96
    max_size: Annotated[int, Field(ge=32)] = 160
    max_polyps: PositiveInt = 2
    polyp_size: Pair[Annotated[float, Field(gt=0, le=0.9)]] = [0.08, 0.35]  # of the short side
    contrast: Annotated[float, Field(gt=0)] = (
        1.0  # how much paler than the mucosa a polyp is (1: as for tests)
    )
    test_sets: dict[str, PositiveInt] | None = None  # pranet layout: test set -> images


class DatasetSettings(Settings):
    """One dataset: where its files are, in which layout, and how it is split."""

    source: Literal["files", "synthetic"] = "files"
    layout: str
    root: str
    split: Split
    synthetic: SyntheticSettings | None = None

    @field_validator("layout")
    @classmethod
    def _known_layout(cls, value: str) -> str:
        from ssformer_repro.polyps.layouts import LAYOUTS

        if value not in LAYOUTS:
            raise ValueError(f"unknown layout {value!r}; valid: {sorted(LAYOUTS)}")
        return value

    @model_validator(mode="after")
    def _synthetic_has_its_generator(self) -> DatasetSettings:
        if (self.source == "synthetic") != (self.synthetic is not None):
            raise ValueError(
                "`synthetic:` settings are needed with, and only with, source: synthetic"
            )
        return self


class Preview(Settings):
    n_samples: PositiveInt = 6
    n_augmentations: PositiveInt = 3
    seed: NonNegativeInt = 0


class DataProcessingSettings(Settings):
    """Which datasets are built, and how their masks and cache are made."""

    datasets: list[str]
    mask_threshold: Annotated[int, Field(ge=0, le=254)] = 127
    non_binary_masks: Literal["binarise", "error"] = "binarise"
    cache_size: PositiveInt = 352
    preview: Preview = Preview()


# --- the grid, tracking, reporting ------------------------------------------------------------


class ReproduceSettings(Settings):
    """The experiment grid: every dataset x backbone x head is a run; per-run overrides.

    `only` narrows the grid to the runs matching any of its patterns (fnmatch globs on run
    names, or name prefixes such as `kvasir.mit_b2`); from the command line a space-separated
    string, e.g. `--params "reproduce.only=kvasir.mit_b0 clinicdb.*.sed"` (a pattern cannot start
    with `*` there: Kedro reads values as YAML, where `*` starts an alias).
    """

    datasets: list[str]
    backbones: list[str]
    heads: list[str]
    seeds: Annotated[list[NonNegativeInt], Field(min_length=1)]  # training seeds: each a run
    overrides: dict[str, dict[str, Any]] = {}
    only: list[str] | None = None

    @field_validator("only", mode="before")
    @classmethod
    def _split_words(cls, value: Any) -> Any:
        return value.split() if isinstance(value, str) else value

    @field_validator("backbones")
    @classmethod
    def _known_backbones(cls, value: list[str]) -> list[str]:
        from ssformer_repro.models.backbones import available_backbones

        return _known(value, available_backbones(), "backbone")

    @field_validator("heads")
    @classmethod
    def _known_heads(cls, value: list[str]) -> list[str]:
        from ssformer_repro.models.heads import available_heads

        return _known(value, available_heads(), "head")


class TrackingSettings(Settings):
    """MLflow: a parent run per `kedro run`, a child per trained model."""

    enabled: bool = True
    uri: str = "sqlite:///mlflow.db"
    experiment: str = "ssformer-repro"
    log_checkpoints: bool = True


class ModelSizesSettings(Settings):
    """The model-size table of the grid's models (backbone x head of its runs)."""

    image_size: PositiveInt = 352


class StatisticsSettings(Settings):
    """The verdict's head-level statistics and its planner (docs/statistics.md)."""

    alpha: Annotated[float, Field(gt=0, lt=1)] = 0.05  # family-wise, Holm over the table
    equivalence_margin: Annotated[float, Field(gt=0)] = 1.0  # points of mDice
    bootstrap_samples: Annotated[int, Field(ge=100)] = 2000  # of the P(A>B) interval
    seed: NonNegativeInt = 0  # of that bootstrap, so the table is the same on every run
    power: Annotated[float, Field(gt=0, lt=1)] = 0.8  # the planner's wanted power
    target_difference: Annotated[float, Field(gt=0)] = 1.0  # the planner's difference, points
    planning_training_spread: Annotated[float, Field(gt=0)] = 1.5  # points, one-seed cells
    max_seeds: Annotated[int, Field(ge=2)] = 50  # the planner looks no further
    # where_heads_differ: margins of the boundary metrics (NSD in points, HD95 in % of the
    # frame's diagonal; Dice uses equivalence_margin), and the smallest stratum tested
    boundary_margins: dict[Literal["nsd", "hd95"], Annotated[float, Field(gt=0)]] = {
        "nsd": 1.0,
        "hd95": 0.5,
    }
    min_stratum_images: Annotated[int, Field(ge=3)] = 5


class PredictSettings(Settings):
    """Segmenting a folder of new frames (the predict pipeline)."""

    run: str | None = None  # a run of the grid, e.g. kvasir.mit_b2.pld.seed42
    checkpoint: str | None = None  # or a best.pt file
    input: str | None = None  # the folder of frames
    tta: TtaMode = "none"
    batch_size: PositiveInt = 8
    num_workers: NonNegativeInt = 0
    save_probabilities: bool = False
    save_overlays: bool = True
    on_existing: Literal["refuse", "new"] = "refuse"


class ExportSettings(Settings):
    """Exporting a run to ONNX and MLflow (the export pipeline)."""

    run: str | None = None
    check_frames: PositiveInt = 4  # test images compared between ONNX Runtime and PyTorch
    mlflow: bool = True  # also log the model to the run's MLflow child run
    on_existing: Literal["refuse", "new"] = "refuse"


class Parameters(Settings):
    """All parameters of a `kedro run`."""

    data_processing: DataProcessingSettings
    datasets: dict[str, DatasetSettings]
    augmentation: AugmentationSettings = AugmentationSettings()
    training: TrainingSettings
    model: ModelSettings = ModelSettings()
    evaluation: EvaluationSettings = EvaluationSettings()
    reproduce: ReproduceSettings
    tracking: TrackingSettings = TrackingSettings()
    model_sizes: ModelSizesSettings | None = None
    statistics: StatisticsSettings = StatisticsSettings()
    predict: PredictSettings = PredictSettings()
    export: ExportSettings = ExportSettings()


# The blocks a run's `reproduce.overrides` entry may change, and their models.
RUN_BLOCKS: dict[str, type[Settings]] = {
    "training": TrainingSettings,
    "model": ModelSettings,
    "augmentation": AugmentationSettings,
    "evaluation": EvaluationSettings,
}


def _known(values: list[str], valid: list[str], what: str) -> list[str]:
    unknown = [value for value in values if value not in valid]
    if unknown:
        raise ValueError(f"unknown {what}(s) {unknown}; valid: {valid}")
    return values


def merge_settings(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """`override` merged into `base`, nested; a block whose choice key (`name`, `strategy`)
    changes is replaced, not merged, so the replaced choice's options do not linger."""
    merged = copy.deepcopy(dict(base))
    for key, value in override.items():
        current = merged.get(key)
        if isinstance(value, Mapping) and isinstance(current, Mapping):
            switched = any(
                choice in value and choice in current and value[choice] != current[choice]
                for choice in CHOICE_KEYS
            )
            merged[key] = copy.deepcopy(dict(value)) if switched else merge_settings(current, value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged
