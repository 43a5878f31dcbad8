"""Every experiment composes to the values it had when the snapshot was taken, key by key.

``tests/fixtures/experiment_configs.json`` holds every experiment's resolved config (``python -m
tests.experiment_snapshot`` writes it). A change to ``conf/`` that reorganises files (families, templates, injected
networks) must leave every value where it was, or name the change below: ``MOVED`` maps an old key of some
experiments to the key that now holds the same value (a constructor argument that moved into ``model.net``);
``CHANGED`` names keys whose value (or presence) changed on purpose, each with the reason. Patterns are full-match
regular expressions over experiment names and dotted keys.
"""

from __future__ import annotations

import json
import re

import pytest

from tests.experiment_snapshot import SNAPSHOT, composed, experiment_names, flat_values

# DARTS family: the search experiments (module ArchitectureSearch) and those whose model is GenotypeClassifier
# (training a cell; the chains' root config has the default model, nas_train).
_NAS_SEARCH = r"(amended_)?(pc)?darts_(cifar10|digits|imagenet)|pdarts_stage_\w+"
_NAS_TRAIN = r"nas_train_\w+|darts_\w+_search_and_train|pdarts_(cifar10|cifar100|digits)(_search_and_train)?"

# Classification, AugRefine, Pruning from Scratch (learn / prune / retrain phases, the baseline's, their chains).
_CLASSIFICATION = r"classify_\w+|augrefine_\w+|pfs_\w+"
_PFS_PRUNE = r"pfs_(baseline_)?(digits|cifar10|imagenet)_prune"

# Logit defense: the attack phase's experiments, and the chains whose root config is their attack phase's.
_LOGIT_ATTACK = r"logit_defense_(attack_)?(digits|cifar10|imagenet)"

#: (experiment pattern, old key pattern, new key template): the value moved, unchanged, to another key.
MOVED: list[tuple[str, str, str]] = [
    # --- architecture search (DARTS family)
    (_NAS_SEARCH, r"model\.(init_channels|layers|in_channels|nodes|multiplier|stem_multiplier|candidate_ops"
     r"|partial_channel_k|edge_normalization|stem)", r"model.net.\1"),
    (_NAS_SEARCH, r"model\.arch_(gradient|warmup_epochs|gradient_clip_val)", r"model.arch_step.\1"),
    (_NAS_SEARCH, r"model\.eta", "model.arch_step.eta"),
    (_NAS_TRAIN, r"model\.(genotype|init_channels|layers|in_channels)", r"model.net.\1"),
    ("nas_train_imagenet", r"model\.auxiliary_batchnorm", "model.net.auxiliary_batchnorm"),
    (_NAS_TRAIN, r"phases\.(\w+)\.inputs\.model\.(genotype|candidate_ops)", r"phases.\1.inputs.model.net.\2"),
    # --- classification, AugRefine, Pruning from Scratch
    (_CLASSIFICATION, r"model\.backbone\.name", "model.net.name"),
    (_CLASSIFICATION, r"model\.backbone\.options\.(\w+)", r"model.net.\1"),
    (_CLASSIFICATION, r"model\.(structure|official_expansion)", r"model.net.\1"),
    (_CLASSIFICATION, r"phases\.(\w+)\.inputs\.model\.structure", r"phases.\1.inputs.model.net.structure"),
    # --- logit defense
    (_LOGIT_ATTACK, r"model\.logit_dir", "task.logit_dir"),
    ("logit_defense_(defender|evaluate)_.*", r"model\.(num_classes|attack_names|hidden|dropout)", r"model.net.\1"),
    # --- CenterNet
    (r"centernet.*", r"model\.(pull|push|offset)_weight", r"model.loss.\1"),
    (r"centernet.*", r"model\.(focal_alpha|focal_beta)", r"model.loss.\1"),
    # --- re-ID (MCNL) and SBIR (SAKE)
    ("sake_.*", r"model\.embedding_dim", "model.heads.embedding_dim"),
    ("sake_.*", r"model\.(sake_lambda|lambda_kd|lambda_sem)", r"model.loss.\1"),
    ("sake_.*", r"model\.(precision_ks|map_tops|itq_bits)", r"model.metric.\1"),
    # --- medical segmentation
    ("(thickened2d|plain2d|unet3d)_.*", r"model\.inference_(axes|batch_size)", r"model.inference.\1"),
    ("(thickened2d|plain2d|unet3d)_.*", r"model\.patch_size", "model.inference.patch_size"),
    ("(thickened2d|plain2d|unet3d)_.*", r"model\.window_overlap", "model.inference.overlap"),
    ("(thickened2d|plain2d|unet3d)_.*", r"model\.dice_weight", "model.loss.lambda_dice"),
    ("(thickened2d|plain2d|unet3d)_.*", r"model\.ce_weight", "model.loss.lambda_ce"),
]

#: (experiment pattern, key pattern, why its value or presence changed on purpose).
CHANGED: list[tuple[str, str, str]] = [
    (".*", "task", "new root key: a step that trains nothing runs as a task (visionsuite/tasks.py), default null"),
    (".*", r"data\.(images\.)?num_classes", "new where the dataset's class count is fixed by its config (CIFAR, digits, "
     "COCO, shapes, the SBIR splits' seen classes): the one source model.num_classes interpolates, checked by the "
     "DataModule against the files"),
    # --- architecture search (DARTS family)
    (f"{_NAS_SEARCH}|{_NAS_TRAIN}", r"model\._target_", "the DARTS family's modules are in lightning_modules/nas.py"),
    (f"{_NAS_SEARCH}|{_NAS_TRAIN}", r"model\.net\.(_target_|num_classes)",
     "the injected network: its class, and num_classes by interpolation of model.num_classes"),
    (_NAS_SEARCH, r"model\.arch_step\._target_", "the architecture step's settings are one typed node (ArchitectureStep)"),
    (_NAS_TRAIN, r"model\.net\.auxiliary", "the network builds its auxiliary head when model.auxiliary_weight > 0 "
     "(interpolated; the module decided before)"),
    (_NAS_TRAIN, r"model\.network", "the network kind is the group choice model/genotype_net=cifar|imagenet"),
    (r"nas_train_(cifar10|cifar100|digits)|darts_\w+_search_and_train|pdarts_(cifar10|cifar100|digits)(_search_and_train)?",
     r"model\.auxiliary_batchnorm", "an argument of NetworkImageNet only: the CIFAR network's config has no such key"),
    (r"pdarts_stage_\w+", r"model\.(net\.)?layers",
     "the stage's depth, interpolated from model.progressive (layers[stage - 1]); the module ignored model.layers"),
    (r"darts_\w+_search_and_train", r"(search|train)_experiment", "the phase experiments of the chain template "
     "conf/experiment/darts/search_and_train.yaml"),
    (r"pdarts_\w+_search_and_train", r"train_experiment", "the training phase's experiment of the chain template "
     "conf/experiment/pdarts/search_and_train.yaml"),
    # --- classification, AugRefine, Pruning from Scratch
    (_CLASSIFICATION, r"model\._target_", "the family's modules are in lightning_modules/classification.py "
     "(ImageClassifier) and lightning_modules/pruning.py (GateLearning, PrunedClassifier)"),
    (_CLASSIFICATION, r"model\.net\.(_target_|num_classes)", "the injected network: the zoo's build_backbone (the "
     "pruned classifier's networks.pruning.structure.pruned_network), num_classes by interpolation of model.num_classes"),
    (_CLASSIFICATION, r"model\.net\.gate_layer\.(_target_|_partial_)", "gate learning's gates are the network's "
     "gate_layer (a partial ChannelGate), no longer added by the module"),
    (_CLASSIFICATION, r"model\.net\.input_size", "pruned_network records an official list's costs at the experiment's "
     "resolution (${..input_size}; the module passed it before)"),
    (_CLASSIFICATION, r"model\.backbone_from_init", "augrefine_refine builds the checkpoint's network with the group "
     "choice model/backbone=from_checkpoint"),
    (r"pfs_\w*imagenet\w*", r"model\.net\.(weights_path|last_stride)", "the network is the group choice "
     "model/backbone=<name> (conf/model/backbone/mobilenet_v2|resnet50.yaml): that file's keys, at their defaults"),
    (_CLASSIFICATION, r"phases\.\w+\.overrides", "the chain templates (conf/experiment/pfs/chain.yaml, "
     "pfs/baseline_chain.yaml, augrefine/chain.yaml) hand the chain's network to every phase as the group choice "
     "model/backbone=<name> (with its expansion, or weight decay), not model.backbone.name=<name>"),
    (r"pfs_(baseline_)?(vgg16|resnet110|mobilenet_v1|resnet50)_(cifar10|imagenet)",
     r"model\.(net|backbone(\.options)?)\.(name|width_multiplier)", "a chain's root (its first phase's config) has the chain's network, the group choice it hands to its phases "
     "(before: the first phase's default network)"),
    (_CLASSIFICATION, r"pfs_data|augrefine_data", "the dataset axis of the chain templates: their phases' experiments "
     "are named from it"),
    (r"pfs_baseline_\w+", r"retrain_epochs|budget_training", "the baseline trains as pfs_<dataset>_retrain does "
     "without a structure (its experiment is that one's child): the base length, Scratch-B inactive"),
    ("augrefine_resnet56_cifar10", r"model\.optimizer\.weight_decay", "the chain's root holds the weight decay it "
     "hands to both phases (1e-4, arXiv:1512.03385), as it holds its network"),
    (_PFS_PRUNE, r"mode|logger\.wandb\.job_type|callbacks\.prune_on_test\.\w+|task\.(_target_|_partial_|compare_with)"
     r"|optimized_metric", "the prune step is a phase task (networks/pruning/tasks.py, task.compare_with) in the "
     "default mode, not mode=test with the PruneOnTest callback; W&B's job_type follows the mode; it returns nothing "
     "to sweepers (optimized_metric null), as in mode=test"),
    # --- logit defense
    ("logit_defense_.*", r"model\._target_", "the family's modules are in lightning_modules/logit_defense.py"),
    ("logit_defense_.*", r"model\.classifier\.(_target_|module(\._target_|\.path)?)", "the classifier to defend is "
     "built by the config layer (networks.defense.classifier.load_classifier; the class that wrote a suite checkpoint "
     "by hydra.utils.get_class: ImageClassifier, now in lightning_modules/classification.py)"),
    (_LOGIT_ATTACK, r"task\.(_target_|_partial_)|test_after_fit|trainer\.(min_epochs|max_epochs|log_every_n_steps|num_sanity_val_steps)",
     "the attack phase is a task running Lightning's predict loop (networks/defense/tasks.py), not a one-epoch fit"),
    ("logit_defense_(digits|cifar10|imagenet)", r"phases\.attack\.debug_overrides", "the attack walks its shards in the "
     "predict loop (trainer.limit_predict_batches=1.0); C&W at 10 iterations for every dataset (digits: already 10)"),
    ("logit_defense_(digits|cifar10|imagenet)", r"logit_defense\.(data|classifier_artifact)", "new keys of the chain "
     "template conf/experiment/logit_defense/chain.yaml: the phases' dataset and the classifier artifact defended"),
    ("logit_defense_imagenet", r"phases\.(attack|evaluate)\.inputs\.model\.classifier\.checkpoint", "ImageNet's val/ "
     "is the reported test split (classify_imagenet): the classifier phase writes no best checkpoint, so the chain "
     "defends the last one, as on CIFAR-10"),
    ("logit_defense_(defender|evaluate)_.*", r"model\.(logit_dir|net\._target_)", "the defenders are model.net "
     "(DefenderBank); their attacks and class count come from the checkpoint or logit dataset by ${call:...}"),
    ("logit_defense_(defender|evaluate)_.*", r"callbacks\.logit_defense_report\._target_",
     "the defender module declares its report callback (configure_callbacks)"),
    ("logit_defense_evaluate_.*", r"test_after_fit|trainer\.(max_epochs|log_every_n_steps)",
     "the evaluate phase is the defender phase's experiment in mode=test, which uses none of these"),
    # --- CenterNet
    (r"centernet.*", r"model\.loss\._target_", "the loss weights of Eq. 1 are one injected LossWeights (model.loss), "
     "so the module takes 10 arguments"),
    # --- re-ID (MCNL) and SBIR (SAKE)
    ("(mcnl|triplet|sake)_.*", r"callbacks\.retrieval_pictures\._target_",
     "the retrieval pictures' callbacks are in callbacks/reid.py and callbacks/sbir.py"),
    ("(mcnl|triplet)_demo", r"model\.net\.trunk\.(widths|blocks)",
     "the demo trunk's preset values are reduced_resnet_trunk's defaults, no longer restated by its model config"),
    ("sake_demo(_teacher)?", r"model\._target_", "the demo teacher's module is in lightning_modules/sake.py"),
    ("sake_.*", r"model\.scheduler\._target_", "SAKE's schedule is in networks/sbir/schedule.py"),
    ("sake_.*", r"model\.net\.(blocks|width_per_group|reduction)",
     "the preset values of cse_resnet / cse_resnet50 (their defaults), no longer restated by the model configs"),
    ("sake_.*", r"model\.(heads\.(_target_|feature_dim|teacher_classes|num_classes)|loss\._target_"
     r"|metric\.(_target_|_partial_))", "new: the student's heads, SAKE's loss and the retrieval metric are built by "
     "the config and injected (teacher_classes and num_classes by interpolation)"),
    ("sake_demo", r"phases\.without_sake\.overrides", "the ablation's key moved: model.loss.sake_lambda=0"),
    # --- medical segmentation
    ("(thickened2d|plain2d|unet3d)_.*", r"model\.inference\._target_",
     "new: the whole-volume inference settings are one injected VolumeInferer instead of four module arguments"),
    ("(thickened2d|plain2d|unet3d)_.*", r"model\.loss\.(_target_|softmax|to_onehot_y|include_background|batch)",
     "new: the loss is MONAI's DiceCELoss, injected; these settings give the former Dice + cross-entropy's numbers"),
    ("(thickened2d|plain2d|unet3d)_.*", r"model\.inference\.mode", "new: how MONAI's sliding windows blend "
     "overlapping windows of 3D networks; constant is the former mean"),
    ("unet3d_.*", r"model\.net\.num_res_units", "new: the 3D U-Net is MONAI's UNet, two convolutions per stage as "
     "residual units"),
    ("unet3d_msd_.*", r"model\.net\.channels", "the 3D U-Net has the thickened network's widths, 32-256 (16-128 "
     "before), so the 2D / 3D comparison differs in the convolutions' dimension only"),
]


#: Keys new in every experiment at these values: conf/trainer/default.yaml lists the Trainer arguments users commonly
#: set at Lightning's defaults (so `trainer.<key>=` works without `+`). A key an experiment had keeps its value.
ADDED_AT_DEFAULT: dict[str, object] = {
    "trainer.strategy": "auto", "trainer.min_steps": None, "trainer.max_steps": -1, "trainer.max_time": None,
    **{f"trainer.limit_{loop}_batches": None for loop in ("train", "val", "test", "predict")},
    "trainer.overfit_batches": 0.0, "trainer.fast_dev_run": False, "trainer.val_check_interval": None,
    "trainer.num_sanity_val_steps": None, "trainer.accumulate_grad_batches": 1, "trainer.gradient_clip_val": None,
    "trainer.gradient_clip_algorithm": None, "trainer.enable_progress_bar": None,
    "trainer.enable_model_summary": None, "trainer.profiler": None, "trainer.detect_anomaly": False,
    "trainer.benchmark": None, "trainer.sync_batchnorm": False, "trainer.use_distributed_sampler": True,
    "trainer.reload_dataloaders_every_n_epochs": 0,
}


def _expected() -> dict[str, dict]:
    return json.loads(SNAPSHOT.read_text())


def _moved(experiment: str, key: str) -> str:
    for experiments, pattern, template in MOVED:
        if re.fullmatch(experiments, experiment) and re.fullmatch(pattern, key):
            return re.sub(pattern, template, key)
    return key


def _changed(experiment: str, key: str) -> bool:
    return any(re.fullmatch(experiments, experiment) and re.fullmatch(pattern, key)
               for experiments, pattern, _ in CHANGED)


def test_the_snapshot_names_every_experiment_users_can_type() -> None:
    assert sorted(_expected()) == experiment_names()


@pytest.mark.parametrize("experiment", sorted(json.loads(SNAPSHOT.read_text())) if SNAPSHOT.is_file() else [])
def test_every_experiment_composes_to_its_snapshot(experiment: str) -> None:
    before = _expected()[experiment]
    after = flat_values(composed(experiment))
    expected = {_moved(experiment, key): value for key, value in before.items() if not _changed(experiment, key)}
    actual = {key: value for key, value in after.items() if not _changed(experiment, key)
              and not (key not in expected and key in ADDED_AT_DEFAULT and ADDED_AT_DEFAULT[key] == value)}
    differences = [f"{key}: {expected.get(key, '<absent>')!r} -> {actual.get(key, '<absent>')!r}"
                   for key in sorted(set(expected) | set(actual)) if expected.get(key, "<absent>") != actual.get(key, "<absent>")]
    assert not differences, f"{experiment}: " + "; ".join(differences[:20])
