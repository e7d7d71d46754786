"""What auto picks, and that it says why."""

from app.ml.plan import choose


def test_auto_fine_tunes_on_a_gpu_within_budget():
    plan = choose("auto", device="cuda:0", n_images=245, finetune_epochs=8, budget_s=240)
    assert plan.mode == "finetune" and "cuda:0" in plan.reason


def test_auto_fine_tunes_a_small_project_on_a_cpu_too():
    plan = choose("auto", device="cpu", n_images=245, finetune_epochs=8, budget_s=240)
    assert plan.mode == "finetune" and "cpu does 8 epochs on 245 images in about 163 s" in plan.reason


def test_auto_on_a_cpu_keeps_the_backbone_frozen_and_says_how_long_fine_tuning_would_take():
    plan = choose("auto", device="cpu", n_images=2000, finetune_epochs=8, budget_s=240)
    assert plan.mode == "head" and plan.recipe == "snapclass"
    assert "22.2 min on this CPU" in plan.reason and "beyond the 4 min" in plan.reason


def test_auto_on_a_gpu_with_too_much_data_for_the_budget_keeps_the_head():
    plan = choose("auto", device="cuda:0", n_images=200_000, finetune_epochs=8, budget_s=240)
    assert plan.mode == "head" and "even on cuda:0" in plan.reason


def test_explicit_modes_are_obeyed():
    assert choose("finetune", device="cpu", n_images=10, finetune_epochs=8, budget_s=1).mode == "finetune"
    tm = choose("head", device="cuda:0", n_images=10, finetune_epochs=8, budget_s=1, recipe="teachable-machine")
    assert (tm.mode, tm.recipe) == ("head", "teachable-machine")
