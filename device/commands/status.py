"""``biolock status``: what this board is configured to do and whether it can (model, store, sensor)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from device.commands._authcli import JSON_OPTION, MODEL_OPTION


def gather(app: Any, model: Path | None) -> dict[str, Any]:
    """A plain dict of the board's state; problems are collected, not raised, so status always answers."""
    from device.errors import BiolockError

    cfg = app.config
    state_dir = app.state_dir
    info: dict[str, Any] = {
        "config_file": str(app.config_file) if app.config_file else None,
        "state_dir": str(state_dir),
        "modality": cfg.device.modality,
        "sensor": cfg.sensor.type,
        "inference": {"type": cfg.inference.type, "num_threads": cfg.inference.num_threads},
        "security": cfg.matching.security,
        "unlock": _unlock_summary(cfg.unlock),  # issue 17: say when nothing would open the door
        "model": None,
        "store": None,
        "problems": [],
    }
    current: dict[str, str] = {}
    fusion = cfg.device.modality == "fusion"
    if fusion:
        info["sensor"] = f"{cfg.sensor.type}+{cfg.sensor_vein.type if cfg.sensor_vein else 'none'}"
        if cfg.sensor_vein is None:
            info["problems"].append("sensor: fusion mode needs a [sensor_vein] section for the vein sensor")
    for modality in ("fingerprint", "vein") if fusion else (cfg.device.modality,):
        try:
            from device.inference import card_for
            from device.matching import threshold_for

            path = model if modality != "vein" or not fusion else cfg.inference.vein_model
            if fusion and modality == "vein" and path is None:
                from models import default_card

                path = default_card("vein")
            card = card_for(cfg.inference, modality, path)
            current[card.modality] = card.model_id
            entry = {"card": str(card.path), "model_id": card.model_id, "quantization": card.quantization,
                     "threshold": threshold_for(card.thresholds, cfg.matching.security),
                     "trained_on": card.trained_on}
            if not fusion:
                entry["minutiae"] = _minutiae_info(cfg, card)
                from device.calibration.policy import status_entry  # issue 16: what decides, how strongly

                entry["decision"] = status_entry(cfg, state_dir, card)  # small-sensor mode: its card and site file
                if "problem" in entry["decision"]:
                    info["problems"].append(f"decision: {entry['decision']['problem']}")
            if info["model"] is None:
                info["model"] = entry
            else:
                info[f"{modality}_model"] = entry
        except BiolockError as exc:
            info["problems"].append(f"{modality if fusion else 'model'}: {exc}")
    if fusion:
        info["fusion"] = _fusion_info(cfg, current, info["problems"])
    from device.platform_info import backend_lines  # which runtime / GPIO / camera backend is in use (issue 20)

    info["backends"] = backend_lines(cfg)
    from device.store import TemplateStore

    try:
        with TemplateStore.open(state_dir, create=False, lockout_config=cfg.lockout) as store:
            users = store.users(current)
            info["store"] = {"path": str(store.path), "key_id": store.key_id, "users": len(users),
                             "templates": sum(u.templates for u in users),
                             "needs_reenrol": [u.name for u in users if u.needs_reenrol]}
            import time

            info["store"]["lockouts"] = [{"subject": name, "remaining_s": round(left, 1), "failures": s.failures}
                                         for name, s, left in store.lockouts(time.monotonic()) if left > 0]
            tail = store.audit_tail(1)
            if tail:
                info["store"]["last_event"] = tail[0].as_dict()
    except BiolockError as exc:
        info["problems"].append(f"store: {exc}")
    return info


def _unlock_summary(unlock: Any) -> str:
    """What opens the door: the serial lock, a GPIO relay, both, or nothing (and whether `run` would start)."""
    parts = [f"serial lock on {unlock.serial.port}"] if unlock.serial.enabled else []
    if unlock.gpio.backend != "none":
        parts.append(f"{unlock.gpio.backend} relay on line {unlock.gpio.relay_pin}")
    if parts:
        return " + ".join(parts)
    if unlock.none:
        return "none (unlock.none = true): accepts open nothing"
    return "none configured: `biolock run` refuses to start (set [unlock.serial], [unlock.gpio] or unlock.none)"


def _fusion_info(cfg: Any, current: dict[str, str], problems: list[str]) -> dict[str, Any] | None:
    """The fusion card in force, checked against the configured models like the daemon does at start."""
    from device.errors import BiolockError
    from device.fusion import fuse_decision, load_fusion_card
    from device.fusion_pipeline import MODALITIES, check_card_models

    path = cfg.matching.fusion_card
    if path is None:
        problems.append("fusion: matching.fusion_card is not set")
        return None
    try:
        card = load_fusion_card(path, expected_matchers=MODALITIES)
        if set(current) == set(MODALITIES):
            check_card_models(card, current, f"fusion card {path}")
        threshold = fuse_decision({}, card, cfg.matching.security, cfg.matching.fusion_fallback).threshold
    except BiolockError as exc:
        problems.append(f"fusion: {exc}")
        return None
    from device.calibration.policy import describe_fusion  # issue 16: what decides, how strongly

    try:
        info = describe_fusion(cfg, card, path, current)
        decision: dict[str, Any] = {**info.as_dict(), "summary": info.summary()}
    except BiolockError as exc:
        decision = {"problem": str(exc)}
        problems.append(f"decision: {exc}")
    return {"card": str(path), "rule": card.rule, "weights": dict(card.weights), "threshold": threshold,
            "fallback": cfg.matching.fusion_fallback, "decision": decision}


def _minutiae_info(cfg: Any, card: Any) -> dict[str, Any]:
    """Whether decisions fuse a minutiae matcher (and at which threshold), or why the embedding decides alone."""
    from device.errors import BiolockError
    from device.minutiae.setup import resolve

    try:
        check, why = resolve(cfg, card.path, card.model_id)
    except BiolockError as exc:
        return {"in_use": False, "problem": str(exc)}
    if check is None:
        return {"in_use": False, "why_not": why}
    return {"in_use": True, "backend": check.matcher.template_id, "card": str(check.card_path),
            "weights": dict(check.card.weights), "threshold": check.threshold(cfg.matching.security)}


@click.command("status")
@MODEL_OPTION
@JSON_OPTION
@click.pass_obj
def command(app, model: Path | None, as_json: bool) -> None:
    """Show the configuration in force, the model and its threshold, and the template store's contents.

    Problems (no model, no store, wrong key) are listed rather than raised, so status always answers.

    \b
    Example:
      biolock status
      biolock --state-dir /var/lib/biolock status --json
    """
    info = gather(app, model)
    if as_json:
        click.echo(json.dumps(info, sort_keys=True, default=str))
        return
    click.echo(f"state dir:  {info['state_dir']}")
    click.echo(f"modality:   {info['modality']} (sensor {info['sensor']}, inference {info['inference']['type']}, "
               f"{info['inference']['num_threads']} thread(s))")
    m = info["model"]
    small = bool(m and (m.get("decision") or {}).get("small_sensor"))
    if m and small:  # issue 18: the partial matcher decides alone; the model card is not loaded
        click.echo(f"model:      not used (small-sensor mode; {m['model_id']} is not loaded)")
        if "threshold" in m["decision"]:
            click.echo(f"security:   {info['security']} -> threshold {m['decision']['threshold']:g} consistent "
                       "matches")
        else:
            click.echo(f"security:   {info['security']} -> refused at start (see the problem below)")
    elif m:
        click.echo(f"model:      {m['model_id']} ({m['quantization']}) from {m['card']}")
        click.echo(f"security:   {info['security']} -> threshold {m['threshold']:.3f}")
    if m:
        mn = m.get("minutiae")
        if mn and mn["in_use"]:
            how = ("decides alone, the model shortlists" if not mn.get("weights", {}).get("fingerprint", 1.0)
                   else "fused with the model")  # issue 15: the shipped card gives the embedding weight 0
            click.echo(f"minutiae:   {mn['backend']} {how} ({mn['card']}) -> threshold {mn['threshold']:.4f}")
        elif mn:
            click.echo(f"minutiae:   off ({mn.get('why_not') or mn.get('problem')})")
        dec = m.get("decision")
        if dec and "summary" in dec:
            click.echo(f"decides:    {dec['summary']}")
    vein = info.get("vein_model")
    if vein:
        click.echo(f"vein model: {vein['model_id']} ({vein['quantization']}) from {vein['card']}")
    f = info.get("fusion")
    if f:
        weights = ", ".join(f"{k} {v:.2f}" for k, v in f["weights"].items())
        click.echo(f"fusion:     {f['rule']} ({weights}) -> fused threshold {f['threshold']:.4f}, "
                   f"fallback {'on' if f['fallback'] else 'off'}, card {f['card']}")
        if "summary" in f["decision"]:
            click.echo(f"decides:    {f['decision']['summary']}")
    for key, line in info.get("backends", {}).items():
        click.echo(f"{key + ':':<12}{line}")
    s = info["store"]
    if s:
        click.echo(f"store:      {s['users']} users, {s['templates']} templates, key {s['key_id']}")
        if s["needs_reenrol"]:
            click.echo(f"re-enrol:   {', '.join(s['needs_reenrol'])} (enrolled with another model)")
        for lock in s.get("lockouts", []):
            click.echo(f"locked out: {lock['subject']} for {lock['remaining_s']:.0f} s (`biolock lockout reset`)")
    click.echo(f"unlock:     {info['unlock']}")
    for problem in info["problems"]:
        click.echo(f"problem:    {problem}")
