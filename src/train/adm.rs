//! guided-diffusion's UNet (ADM, Dhariwal and Nichol 2021), the backbone of the user's
//! pretrained-transfer experiment (`experiment: diffusion_pretrained`): built at the shapes
//! of OpenAI's class-conditional ImageNet-64 checkpoint and run at the user's 40x40.
//!
//! Only the structure that checkpoint has is built (scale-shift norm, residual blocks that
//! resample, attention heads of fixed width with q, k and v split before the heads, learned
//! sigma): their code builds no other, and a flag this model ignored would be a silent key.
//! Parameters carry guided-diffusion's names (`state_dict`), so OpenAI's file loads by name
//! and our weights export to the user's `AdmDdpmModel`.

use burn::nn::conv::{Conv1d, Conv1dConfig, Conv2d};
use burn::nn::{
    Dropout, DropoutConfig, Embedding, EmbeddingConfig, GroupNorm, GroupNormConfig, Linear,
    LinearConfig,
};
use burn::prelude::*;
use burn::tensor::activation::softmax;

use super::kernels;
use super::profile::op;
use super::unet::{act, conv, conv3, norm, pointwise};

pub mod hybrid;
pub mod state_dict;

pub use super::settings::AdmFlags;

/// Group norm over 32 groups (their `GroupNorm32`, computed in f32 as ours always is).
fn norm32(ch: usize, device: &Device) -> GroupNorm {
    GroupNormConfig::new(32, ch).init(device)
}

/// Average pooling over 2x2 windows (their `avg_pool2d(2)`, which drops an odd last row
/// or column), as a reshape and a mean so it differentiates on every backend.
fn down2(x: Tensor<4>) -> Tensor<4> {
    let [b, c, h, w] = x.dims();
    let (h2, w2) = (h / 2, w / 2);
    x.narrow(2, 0, 2 * h2)
        .narrow(3, 0, 2 * w2)
        .reshape([b, c, h2, 2, w2, 2])
        .mean_dim(5)
        .mean_dim(3)
        .reshape([b, c, h2, w2])
}

/// Nearest-neighbour upsampling by 2 (their `interpolate(scale_factor=2)`).
fn up2(x: Tensor<4>) -> Tensor<4> {
    let [b, c, h, w] = x.dims();
    x.reshape([b, c, h, 1, w, 1])
        .expand([b, c, h, 2, w, 2])
        .reshape([b, c, 2 * h, 2 * w])
}

/// A residual block: norm, SiLU, (resampling), conv; then the embedding's scale and shift
/// on the second norm, SiLU, dropout, conv; plus the (resampled, 1x1-projected) input.
#[derive(Module, Debug)]
pub struct ResBlock {
    in_norm: GroupNorm,
    in_conv: Conv2d,
    emb: Linear,
    out_norm: GroupNorm,
    dropout: Dropout,
    out_conv: Conv2d,
    skip: Option<Conv2d>,
    up: bool,
    down: bool,
}

impl ResBlock {
    fn new(cin: usize, cout: usize, f: &AdmFlags, resample: (bool, bool), d: &Device) -> Self {
        ResBlock {
            in_norm: norm32(cin, d),
            in_conv: conv(cin, cout, 3, 1, d),
            emb: LinearConfig::new(f.embed_dim(), 2 * cout).init(d),
            out_norm: norm32(cout, d),
            dropout: DropoutConfig::new(f.dropout).init(),
            out_conv: conv(cout, cout, 3, 1, d),
            skip: (cin != cout).then(|| conv(cin, cout, 1, 1, d)),
            up: resample.0,
            down: resample.1,
        }
    }

    fn resample(&self, x: Tensor<4>) -> Tensor<4> {
        match (self.up, self.down) {
            (true, _) => up2(x),
            (_, true) => down2(x),
            _ => x,
        }
    }

    fn forward(&self, x: Tensor<4>, emb: &Tensor<2>) -> Tensor<4> {
        let h = self.resample(act(norm(&self.in_norm, x.clone())));
        let h = conv3(&self.in_conv, h);
        let x = self.resample(x);
        let e = op("linear", &self.emb, act(emb.clone()), Linear::forward);
        let [b, c2] = e.dims();
        let c = c2 / 2;
        let e = e.reshape([b, c2, 1, 1]);
        let (scale, shift) = (e.clone().narrow(1, 0, c), e.narrow(1, c, c));
        let h = norm(&self.out_norm, h) * scale.add_scalar(1.0) + shift;
        let h = op("dropout", &self.dropout, act(h), kernels::dropout);
        let h = conv3(&self.out_conv, h);
        let skip = match &self.skip {
            Some(s) => op("conv 1x1", s, x, pointwise),
            None => x,
        };
        skip + h
    }
}

/// Self-attention over the pixels with a residual: heads of `head_channels`, q, k and v
/// split before the heads ("new order"), each scaled by `ch^-1/4`.
#[derive(Module, Debug)]
pub struct Attention {
    norm: GroupNorm,
    qkv: Conv1d,
    proj_out: Conv1d,
    heads: usize,
}

/// A kernel-size-1 `Conv1d` as one matrix product per sample.
fn pointwise1d(c: &Conv1d, x: Tensor<3>) -> Tensor<3> {
    let [cout, cin, _] = c.weight.dims();
    let y = c.weight.val().reshape([1, cout, cin]).matmul(x);
    match &c.bias {
        Some(bias) => y + bias.val().reshape([1, cout, 1]),
        None => y,
    }
}

impl Attention {
    fn new(ch: usize, f: &AdmFlags, d: &Device) -> Self {
        Attention {
            norm: norm32(ch, d),
            qkv: Conv1dConfig::new(ch, 3 * ch, 1).init(d),
            proj_out: Conv1dConfig::new(ch, ch, 1).init(d),
            heads: ch / f.head_channels,
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [b, c, h, w] = x.dims();
        let qkv = op(
            "conv 1x1",
            &self.qkv,
            norm(&self.norm, x.clone()).reshape([b, c, h * w]),
            pointwise1d,
        );
        let heads = self.heads;
        let a = op(
            "attention (QK^T, softmax, AV)",
            &heads,
            qkv,
            |&heads, qkv| attend(qkv, heads),
        );
        let out = op("conv 1x1", &self.proj_out, a, pointwise1d);
        x + out.reshape([b, c, h, w])
    }
}

/// `[b, 3c, L]` -> `[b, c, L]`: per head, `softmax(q^T k)` over the keys, applied to `v`.
fn attend(qkv: Tensor<3>, heads: usize) -> Tensor<3> {
    let [b, c3, l] = qkv.dims();
    let c = c3 / 3;
    let ch = c / heads;
    let scale = (ch as f64).powf(-0.25);
    let part = |i: usize| qkv.clone().narrow(1, i * c, c).reshape([b * heads, ch, l]);
    let (q, k, v) = (
        part(0).mul_scalar(scale),
        part(1).mul_scalar(scale),
        part(2),
    );
    let weight = softmax(q.swap_dims(1, 2).matmul(k), 2);
    v.matmul(weight.swap_dims(1, 2)).reshape([b, c, l])
}

/// One of their `TimestepEmbedSequential`s: a first convolution (input block 0 only), a
/// residual block, attention, a second residual block (the middle's, or an output
/// block's upsampling one), in that order; their indices count the present ones.
#[derive(Module, Debug)]
pub struct Block {
    conv: Option<Conv2d>,
    res: Option<ResBlock>,
    attn: Option<Attention>,
    res2: Option<ResBlock>,
}

impl Block {
    fn forward(&self, mut h: Tensor<4>, emb: &Tensor<2>) -> Tensor<4> {
        if let Some(c) = &self.conv {
            h = conv3(c, h);
        }
        if let Some(r) = &self.res {
            h = r.forward(h, emb);
        }
        if let Some(a) = &self.attn {
            h = a.forward(h);
        }
        if let Some(r) = &self.res2 {
            h = r.forward(h, emb);
        }
        h
    }
}

fn block(res: Option<ResBlock>, attn: Option<Attention>, res2: Option<ResBlock>) -> Block {
    Block {
        conv: None,
        res,
        attn,
        res2,
    }
}

/// The UNet: time (and label) embedding, input blocks, the middle, output blocks with the
/// input blocks' outputs concatenated, and the norm-SiLU-conv head.
#[derive(Module, Debug)]
pub struct AdmUNet {
    time_in: Linear,
    time_out: Linear,
    label_emb: Option<Embedding>,
    input_blocks: Vec<Block>,
    middle: Block,
    output_blocks: Vec<Block>,
    out_norm: GroupNorm,
    out_conv: Conv2d,
    model_channels: usize,
}

impl AdmUNet {
    /// A freshly initialised model; `label_rows` is the label embedding's row count
    /// (`num_classes + 1` for the user's model: the last row is the unconditional token),
    /// `None` for an unconditional one.
    pub fn new(f: &AdmFlags, label_rows: Option<usize>, d: &Device) -> AdmUNet {
        let mc = f.model_channels;
        let emb = f.embed_dim();
        let mut input_blocks = vec![Block {
            conv: Some(conv(f.in_channels, mc, 3, 1, d)),
            ..block(None, None, None)
        }];
        let (mut chans, mut ch, mut ds) = (vec![mc], mc, 1);
        let attn = |ds: usize, ch: usize| {
            f.attention_ds
                .contains(&ds)
                .then(|| Attention::new(ch, f, d))
        };
        for (level, &mult) in f.channel_mult.iter().enumerate() {
            for _ in 0..f.num_res_blocks {
                let res = ResBlock::new(ch, mult * mc, f, (false, false), d);
                ch = mult * mc;
                input_blocks.push(block(Some(res), attn(ds, ch), None));
                chans.push(ch);
            }
            if level + 1 != f.channel_mult.len() {
                let down = ResBlock::new(ch, ch, f, (false, true), d);
                input_blocks.push(block(Some(down), None, None));
                chans.push(ch);
                ds *= 2;
            }
        }
        let middle = block(
            Some(ResBlock::new(ch, ch, f, (false, false), d)),
            Some(Attention::new(ch, f, d)),
            Some(ResBlock::new(ch, ch, f, (false, false), d)),
        );
        let mut output_blocks = Vec::new();
        for (level, &mult) in f.channel_mult.iter().enumerate().rev() {
            for i in 0..=f.num_res_blocks {
                let skip = chans
                    .pop()
                    .expect("one input block output per output block");
                let res = ResBlock::new(ch + skip, mc * mult, f, (false, false), d);
                ch = mc * mult;
                let a = attn(ds, ch);
                let up = (level > 0 && i == f.num_res_blocks).then(|| {
                    ds /= 2;
                    ResBlock::new(ch, ch, f, (true, false), d)
                });
                output_blocks.push(block(Some(res), a, up));
            }
        }
        AdmUNet {
            time_in: LinearConfig::new(mc, emb).init(d),
            time_out: LinearConfig::new(emb, emb).init(d),
            label_emb: label_rows.map(|n| EmbeddingConfig::new(n, emb).init(d)),
            input_blocks,
            middle,
            output_blocks,
            out_norm: norm32(ch, d),
            out_conv: conv(ch, f.out_channels, 3, 1, d),
            model_channels: mc,
        }
    }

    /// The label embedding's rows, `None` for an unconditional model.
    pub fn label_rows(&self) -> Option<usize> {
        self.label_emb.as_ref().map(|e| e.weight.dims()[0])
    }

    /// The model's output for `x` (`[B, C, H, W]`) at (original) timesteps `t` (`[B]`,
    /// floats) with label rows `y`: `[B, out_channels, H, W]`, epsilon then the variance
    /// interpolation `v` in [-1, 1] (learned range).
    pub fn forward(&self, x: Tensor<4>, t: Tensor<1>, y: Option<Tensor<1, Int>>) -> Tensor<4> {
        let temb = timestep_embedding(t, self.model_channels);
        let mut emb = op("linear", &self.time_in, temb, Linear::forward);
        emb = op("linear", &self.time_out, act(emb), Linear::forward);
        if let (Some(e), Some(y)) = (&self.label_emb, y) {
            let b = y.dims()[0];
            let dim = emb.dims()[1];
            emb = emb + e.forward(y.reshape([b, 1])).reshape([b, dim]);
        }
        let mut hs = Vec::with_capacity(self.input_blocks.len());
        let mut h = x;
        for b in &self.input_blocks {
            h = b.forward(h, &emb);
            hs.push(h.clone());
        }
        h = self.middle.forward(h, &emb);
        for b in &self.output_blocks {
            let skip = hs.pop().expect("one input block output per output block");
            h = b.forward(Tensor::cat(vec![h, skip], 1), &emb);
        }
        conv3(&self.out_conv, act(norm(&self.out_norm, h)))
    }
}

/// Their `timestep_embedding`: `[cos(t f_i), sin(t f_i)]` (cosines first), `f_i =
/// exp(-ln(10000) i / half)` for `i < half = dim / 2`, computed in f32 as theirs is.
pub fn timestep_embedding(t: Tensor<1>, dim: usize) -> Tensor<2> {
    let half = dim / 2;
    let device = t.device();
    let freqs: Vec<f32> = (0..half)
        .map(|i| ((-(10000f64.ln()) as f32) * i as f32 / half as f32).exp())
        .collect();
    let freqs = Tensor::<1>::from_floats(freqs.as_slice(), &device).reshape([1, half]);
    let n = t.dims()[0];
    let args = t.reshape([n, 1]).mul(freqs);
    Tensor::cat(vec![args.clone().cos(), args.sin()], 1)
}
