"""Train the built-in demonstration model from scratch on a CPU and save it as a diffusers folder.

    python -m invoke_shell.toymodel.train --out DIR            # about 55 min on an idle 2-core CPU
    python -m invoke_shell.toymodel.train --out DIR --smoke    # a few steps of each stage, seconds

Stages: procedural data -> tokenizer -> VAE (L1+MSE+KL, fp32) -> cached latents ->
UNet + text encoder trained jointly (eps prediction, min-SNR 5, offset noise 0.1, 10% empty
captions, EMA) -> StableDiffusionPipeline.save_pretrained (UNet/VAE fp16, text encoder fp32).
Each training stage runs for a wall-clock budget with a cosine learning rate over that budget,
so the run ends on time even on a busy machine. Seeded; a loadable folder is written every few
minutes during the UNet stage.
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import os
import random
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from . import data as D
from .arch import make_text_encoder, make_unet, make_vae, save_folder
from .tokenizer import build_tokenizer


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- helpers
def to_tensor(arr: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(arr).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def cosine_lr(base: float, frac: float, step: int, warmup: int, floor: float = 0.05) -> float:
    w = min(1.0, (step + 1) / warmup) if warmup else 1.0
    frac = min(max(frac, 0.0), 1.0)
    return base * w * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * frac)))


class ThreadTuner:
    """Use 2 torch threads only while no other process is busy on the CPU.

    With 2 cores and another busy process, 2 OpenMP threads are 10-20x slower than 1 (each
    parallel region waits for the descheduled thread), so the count follows the machine's load,
    measured from /proc every `every` steps. `max_threads` 1 disables it."""

    def __init__(self, max_threads: int, every: int = 20):
        self.max, self.every, self.n = max_threads, every, 1
        self.prev = self._read()
        torch.set_num_threads(1)

    @staticmethod
    def _read():
        try:
            with open("/proc/stat") as f:
                v = [int(x) for x in f.readline().split()[1:]]
            with open("/proc/self/stat") as f:
                me = f.read().rsplit(")", 1)[1].split()
            return sum(v), v[3] + v[4], int(me[11]) + int(me[12]), time.time()
        except OSError:
            return None

    def step(self, step: int) -> None:
        if self.max <= 1 or step % self.every or self.prev is None:
            return
        cur = self._read()
        tot, idle, mine = (cur[i] - self.prev[i] for i in range(3))
        self.prev = cur
        if tot <= 0:
            return
        ncpu = os.cpu_count() or 1
        others = max(0.0, (tot - idle - mine) / tot * ncpu)        # cores used by other processes
        want = self.max if others < 0.3 else 1
        if want != self.n:
            self.n = want
            torch.set_num_threads(want)
            log(f"threads -> {want} (other processes use {others:.2f} cores)")


class Budget:
    """Stops a stage after `seconds` of wall clock (or `max_steps`); gives the schedule fraction."""

    def __init__(self, seconds: float, max_steps: int | None, desc: str):
        self.seconds, self.max_steps, self.t0 = seconds, max_steps, time.time()
        total = max_steps if max_steps else int(seconds)
        self.bar = tqdm(total=total, desc=desc, unit="step" if max_steps else "s", file=sys.stderr,
                        mininterval=10 if not max_steps else 0.1, dynamic_ncols=False, ncols=110,
                        bar_format="{desc}: {percentage:3.0f}%|{bar:20}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}] {postfix}")
        self._last = 0

    def frac(self, step: int) -> float:
        if self.max_steps:
            return step / self.max_steps
        return (time.time() - self.t0) / self.seconds

    def done(self, step: int) -> bool:
        return self.frac(step) >= 1.0

    def update(self, n_step: int, **post):
        n = n_step if self.max_steps else min(int(time.time() - self.t0), self.bar.total)
        self.bar.update(n - self._last)
        self._last = n
        self.bar.set_postfix(post, refresh=False)

    def close(self):
        self.bar.close()


# ----------------------------------------------------------------------------- stages
def train_vae(images: np.ndarray, args, rng: np.random.Generator):
    vae = make_vae()
    vae.train()
    opt = torch.optim.AdamW(vae.parameters(), lr=args.vae_lr, weight_decay=0.0)
    bud = Budget(args.vae_minutes * 60, args.vae_steps, "vae")
    step, run = 0, None
    n = len(images)
    tuner = ThreadTuner(args.threads, every=10)
    while not bud.done(step):
        tuner.step(step)
        lr = cosine_lr(args.vae_lr, bud.frac(step), step, warmup=50)
        for g in opt.param_groups:
            g["lr"] = lr
        x = to_tensor(images[rng.integers(0, n, args.vae_batch)])
        post = vae.encode(x).latent_dist
        z = post.sample()
        rec = vae.decode(z).sample
        kl = post.kl().mean()
        loss = F.l1_loss(rec, x) + F.mse_loss(rec, x) + 1e-6 * kl.float()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        opt.step()
        step += 1
        run = loss.item() if run is None else 0.98 * run + 0.02 * loss.item()
        bud.update(step, step=step, loss=f"{run:.4f}", lr=f"{lr:.1e}")
    bud.close()
    vae.eval()
    log(f"vae: {step} steps in {time.time() - bud.t0:.0f} s, running loss {run:.4f}")
    return vae, step


def finetune_decoder(vae, lat_raw: torch.Tensor, images: np.ndarray, args, rng: np.random.Generator) -> int:
    """Train only the VAE decoder on (encoder mean -> picture): sharper pictures, same latent space,
    so a UNet trained on these latents stays valid."""
    vae.train()
    for p in vae.parameters():
        p.requires_grad_(False)
    dec = list(vae.decoder.parameters()) + list(vae.post_quant_conv.parameters())
    for p in dec:
        p.requires_grad_(True)
    opt = torch.optim.AdamW(dec, lr=args.decoder_lr, weight_decay=0.0)
    bud = Budget(args.decoder_minutes * 60, args.decoder_steps, "vae decoder")
    tuner = ThreadTuner(args.threads, every=10)
    step, run, n = 0, None, len(images)
    while not bud.done(step):
        tuner.step(step)
        lr = cosine_lr(args.decoder_lr, bud.frac(step), step, warmup=20)
        for g in opt.param_groups:
            g["lr"] = lr
        idx = rng.integers(0, n, args.vae_batch)
        z = lat_raw[torch.from_numpy(idx)]
        z = z + 0.02 * z.std() * torch.randn_like(z)
        x = to_tensor(images[idx])
        rec = vae.decode(z).sample
        loss = F.l1_loss(rec, x) + F.mse_loss(rec, x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(dec, 1.0)
        opt.step()
        step += 1
        run = loss.item() if run is None else 0.98 * run + 0.02 * loss.item()
        bud.update(step, step=step, loss=f"{run:.4f}", lr=f"{lr:.1e}")
    bud.close()
    for p in vae.parameters():
        p.requires_grad_(True)
    vae.eval()
    log(f"vae decoder: {step} steps in {time.time() - bud.t0:.0f} s, running loss {run:.4f}")
    return step


@torch.no_grad()
def encode_latents(vae, images: np.ndarray, batch: int = 256) -> torch.Tensor:
    out = []
    for i in range(0, len(images), batch):
        x = to_tensor(images[i:i + batch])
        out.append(vae.encode(x).latent_dist.mean)
    return torch.cat(out)


@torch.no_grad()
def vae_psnr(vae, images: np.ndarray) -> float:
    x = to_tensor(images)
    rec = vae.decode(vae.encode(x).latent_dist.mean).sample.clamp(-1, 1)
    mse = ((rec - x) / 2).pow(2).mean().item()
    return 10 * math.log10(1.0 / max(mse, 1e-12))


def train_unet(data: tuple[torch.Tensor, torch.Tensor, torch.Tensor], vae, tok, args, rng: np.random.Generator,
               meta: dict, init=None):
    """`data` is (latents, prompt token ids, the empty prompt's ids)."""
    from diffusers import DDPMScheduler
    latents, ids, empty_ids = data
    unet, te = init if init is not None else (make_unet(), make_text_encoder(tok))
    unet.train(), te.train()
    ema_unet, ema_te = copy.deepcopy(unet).eval(), copy.deepcopy(te).eval()
    for p in list(ema_unet.parameters()) + list(ema_te.parameters()):
        p.requires_grad_(False)
    params = list(unet.parameters()) + list(te.parameters())
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.01)
    ddpm = DDPMScheduler(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear")
    abar = ddpm.alphas_cumprod
    snr = abar / (1 - abar)
    weight_t = torch.clamp(snr, max=5.0) / snr            # min-SNR-5 for eps prediction
    bud = Budget(args.unet_minutes * 60, args.unet_steps, "unet+te")
    n = len(latents)
    step, run, last_save = 0, None, time.time()
    log(f"unet {sum(p.numel() for p in unet.parameters()):,} params, text encoder {sum(p.numel() for p in te.parameters()):,}")
    tuner = ThreadTuner(args.threads, every=20)
    while not bud.done(step):
        tuner.step(step)
        lr = cosine_lr(args.lr, bud.frac(step), step, warmup=args.warmup)
        for g in opt.param_groups:
            g["lr"] = lr
        idx = torch.from_numpy(rng.integers(0, n, args.batch))
        x0 = latents[idx]
        tid = ids[idx].clone()
        drop = torch.from_numpy(rng.random(args.batch) < 0.1)
        tid[drop] = empty_ids
        b = x0.shape[0]
        noise = torch.randn_like(x0) + 0.1 * torch.randn(b, x0.shape[1], 1, 1)
        t = torch.randint(0, 1000, (b,))
        xt = ddpm.add_noise(x0, noise, t)
        cond = te(tid)[0]
        pred = unet(xt, t, encoder_hidden_states=cond).sample
        loss = ((pred - noise) ** 2).mean(dim=(1, 2, 3))
        loss = (loss * weight_t[t]).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        step += 1
        decay = min(0.999, (1 + step) / (10 + step))
        with torch.no_grad():
            for m, e in ((unet, ema_unet), (te, ema_te)):
                for p, q in zip(m.parameters(), e.parameters()):
                    q.lerp_(p, 1 - decay)
        run = loss.item() if run is None else 0.98 * run + 0.02 * loss.item()
        bud.update(step, step=step, loss=f"{run:.4f}", lr=f"{lr:.1e}")
        if step % 200 == 0:
            log(f"unet step {step}, running loss {run:.4f}, lr {lr:.2e}, {step / (time.time() - bud.t0):.2f} it/s")
        if args.save_every and time.time() - last_save > args.save_every * 60:
            meta.update(unet_steps=step, unet_seconds=round(time.time() - bud.t0), partial=True)
            save_folder(args.out, ema_unet, vae, ema_te, tok, meta)
            last_save = time.time()
            log(f"saved checkpoint folder at step {step}")
    bud.close()
    log(f"unet+te: {step} steps in {time.time() - bud.t0:.0f} s, running loss {run:.4f}")
    return ema_unet, ema_te, step, time.time() - bud.t0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="output diffusers folder")
    ap.add_argument("--smoke", action="store_true", help="a few steps of each stage (seconds)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--images", type=int, default=40000)
    ap.add_argument("--vae-minutes", type=float, default=10.0)
    ap.add_argument("--unet-minutes", type=float, default=42.0)
    ap.add_argument("--vae-steps", type=int, default=None, help="fixed step count instead of the time budget")
    ap.add_argument("--unet-steps", type=int, default=None, help="fixed step count instead of the time budget")
    ap.add_argument("--vae-batch", type=int, default=16)
    ap.add_argument("--vae-lr", type=float, default=1.5e-3)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=6e-4)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--threads", type=int, default=2, help="at most this many torch threads (2 only while the CPU is otherwise idle)")
    ap.add_argument("--save-every", type=float, default=6.0, help="minutes between checkpoint folders (0: off)")
    ap.add_argument("--decoder-minutes", type=float, default=0.0,
                    help="with --resume: first fine-tune the VAE decoder alone (latent space unchanged)")
    ap.add_argument("--decoder-steps", type=int, default=None)
    ap.add_argument("--decoder-lr", type=float, default=1e-3)
    ap.add_argument("--resume", default=None, metavar="DIR",
                    help="continue training the UNet and text encoder of a saved folder (fresh optimiser, new cosine budget)")
    args = ap.parse_args(argv)
    if args.smoke:
        args.images, args.vae_steps, args.unet_steps, args.decoder_steps = 128, 3, 3, 3
        args.vae_batch, args.batch, args.warmup, args.save_every = 8, 8, 2, 0
    torch.set_num_threads(1)
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    t0 = time.time()

    log(f"generating {args.images} procedural pictures (seed {args.seed})")
    images, caps, _ = D.make_dataset(args.images, seed=args.seed)
    tok = build_tokenizer()
    ids = torch.tensor(tok(caps, padding="max_length", max_length=77, truncation=True).input_ids)
    empty_ids = torch.tensor(tok([""], padding="max_length", max_length=77).input_ids[0])
    log(f"data ready in {time.time() - t0:.0f} s; tokenizer {len(tok)} tokens")

    command = "python -m invoke_shell.toymodel.train " + " ".join(argv if argv is not None else sys.argv[1:])
    init, prev = None, None
    held = D.make_dataset(512 if not args.smoke else 16, seed=args.seed + 999)[0]
    if args.resume:
        # continue the UNet + text encoder of a saved folder (its VAE is kept as it is)
        from diffusers import AutoencoderKL, UNet2DConditionModel
        from transformers import CLIPTextModel
        vae = AutoencoderKL.from_pretrained(os.path.join(args.resume, "vae")).float().eval()
        init = (UNet2DConditionModel.from_pretrained(os.path.join(args.resume, "unet")).float(),
                CLIPTextModel.from_pretrained(os.path.join(args.resume, "text_encoder"), dtype=torch.float32))
        with open(os.path.join(args.resume, "training.json")) as f:
            prev = json.load(f)
        vae_steps = 0
        sf = vae.config.scaling_factor
        t1 = time.time()
        lat = encode_latents(vae, images)
        log(f"resumed from {args.resume}; latents encoded in {time.time() - t1:.0f} s; vae PSNR {vae_psnr(vae, held):.1f} dB")
        if args.decoder_minutes > 0 or args.decoder_steps:
            vae_steps = finetune_decoder(vae, lat, images, args, rng)
        lat = lat * sf
        psnr = vae_psnr(vae, held)
        log(f"vae PSNR {psnr:.1f} dB")
    else:
        vae, vae_steps = train_vae(images, args, rng)
        psnr = vae_psnr(vae, held)
        t1 = time.time()
        lat = encode_latents(vae, images)
        sf = 1.0 / lat.std().item()
        vae.register_to_config(scaling_factor=sf)
        lat = lat * sf
        log(f"vae PSNR {psnr:.1f} dB on held-out pictures; latents encoded in {time.time() - t1:.0f} s, scaling_factor {sf:.4f}")

    meta = {"seed": args.seed, "images": args.images, "vae_steps": vae_steps, "vae_psnr_db": round(psnr, 2),
            "scaling_factor": sf, "command": command}
    if prev:
        meta["continued_from"] = prev
    unet, te, unet_steps, unet_s = train_unet((lat, ids, empty_ids), vae, tok, args, rng, meta, init=init)
    total = time.time() - t0
    meta.update(unet_steps=unet_steps, unet_seconds=round(unet_s), total_seconds=round(total), partial=False)
    save_folder(args.out, unet, vae, te, tok, meta)
    log(f"saved {args.out}; total wall time {total / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
