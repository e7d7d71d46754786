"""What auto picks, and that it says why."""

from app.ml.plan import choose, finetune_seconds


def plan(requested="auto", device="cpu", n_images=245, budget_s=240.0, **kw):
    return choose(requested, device=device, online=device.startswith("cuda"), n_images=n_images,
                  finetune_epochs=kw.pop("finetune_epochs", 12), budget_s=budget_s, cached_views=4, **kw)


def test_auto_fine_tunes_on_a_gpu_within_budget_the_usual_way():
    p = plan(device="cuda:0", finetune_epochs=8)
    assert (p.mode, p.engine, p.keep_if_better) == ("finetune", "online", True) and "cuda:0" in p.reason


def test_auto_fine_tunes_a_small_project_on_a_cpu_from_cached_activations():
    p = plan()
    assert (p.mode, p.engine, p.keep_if_better) == ("finetune", "cached", True)
    # 245 photos and 4 views of the 208 training ones through the front, 12 epochs of 208 through the tail.
    assert "cpu does 12 epochs on 245 images in about 31 s" in p.reason
    assert "kept only if it beats the frozen backbone's head on the validation photos" in p.reason


def test_auto_on_a_cpu_keeps_the_backbone_frozen_and_says_how_long_fine_tuning_would_take():
    p = plan(n_images=5000)
    assert (p.mode, p.recipe) == ("head", "snapclass")
    minutes = finetune_seconds(engine="cached", n_images=5000, epochs=12, views=4) / 60
    assert f"{minutes:.1f} min on this CPU" in p.reason and "beyond the 4 min" in p.reason


def test_auto_on_a_gpu_with_too_much_data_for_the_budget_keeps_the_head():
    p = plan(device="cuda:0", n_images=200_000, finetune_epochs=8)
    assert p.mode == "head" and "even on cuda:0" in p.reason


def test_explicit_modes_are_obeyed_and_not_second_guessed():
    ft = plan("finetune", n_images=10, budget_s=1)
    assert (ft.mode, ft.engine, ft.keep_if_better) == ("finetune", "cached", False)
    assert plan("finetune", device="cuda:0").engine == "online"
    tm = plan("head", device="cuda:0", recipe="teachable-machine")
    assert (tm.mode, tm.recipe) == ("head", "teachable-machine")
