//! The user's class-conditional DDPM UNet, built from `model.architecture`: sinusoidal
//! time embedding and MLP, a class embedding with one extra row for the unconditional
//! class (classifier-free guidance), residual blocks (GroupNorm(8), SiLU, dropout, time and
//! class injection), self-attention where `use_attention` says, strided-conv
//! downsampling, bilinear (align_corners) upsampling plus conv, skip connections, and a
//! GroupNorm-SiLU-conv head. Layer for layer the structure of
//! `../shared/bench/python/unet_ref.py`, so parameter counts and shapes match PyTorch's.

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{
    Dropout, DropoutConfig, Embedding, EmbeddingConfig, GroupNorm, GroupNormConfig, Linear,
    LinearConfig, PaddingConfig2d,
};
use burn::prelude::*;
use burn::tensor::activation::softmax;

use super::kernels;
use super::profile::op;
use super::settings::Architecture;

pub mod state_dict;

/// Residual blocks per stage, as in the user's UNet.
const BLOCKS: usize = 2;
/// Attention heads.
const HEADS: usize = 4;
/// Dropout inside residual blocks.
const DROPOUT: f64 = 0.1;

pub(crate) fn conv(cin: usize, cout: usize, k: usize, stride: usize, device: &Device) -> Conv2d {
    Conv2dConfig::new([cin, cout], [k, k])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(k / 2, k / 2, k / 2, k / 2))
        .init(device)
}

fn group_norm(ch: usize, device: &Device) -> GroupNorm {
    GroupNormConfig::new(8, ch).init(device)
}

// Every layer call goes through `profile::op`, which names its kind for
// `diffusion-train bench --ops` and is the plain call otherwise.
pub(crate) fn conv3(c: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    op("conv 3x3", c, x, same3x3)
}

/// A 3x3 convolution of stride 1 and padding 1: `Conv2d::forward`, computed on the CPU by
/// our kernel (`super::kernels`), whose backward is two GEMMs where burn's took 2.2-2.8
/// times the forward.
pub fn same3x3(c: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    debug_assert_eq!(
        (
            c.weight.dims()[2..].to_vec(),
            c.stride,
            c.dilation,
            c.groups
        ),
        (vec![3, 3], [1, 1], [1, 1], 1),
        "a 3x3 convolution of stride 1"
    );
    kernels::conv3x3(x, c.weight.val(), c.bias.as_ref().map(|b| b.val()))
}

fn conv_down(c: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    op("conv 3x3 stride 2", c, x, Conv2d::forward)
}

fn conv1(c: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    op("conv 1x1", c, x, pointwise)
}

/// A 1x1 convolution as one matrix product per sample, `W [cout, cin] @ x [cin, h w]`.
/// The same function as `Conv2d::forward`, but burn's CPU backend runs a convolution's
/// backward through im2col and a transposed convolution, which took 4 to 9 times its
/// forward for these layers (`diffusion-train bench --ops`), where a product's backward
/// is two more products on the same GEMM.
pub fn pointwise(c: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    let [b, cin, h, w] = x.dims();
    let [cout, wcin, kh, kw] = c.weight.dims();
    debug_assert_eq!(
        ([wcin, kh, kw], c.stride, c.groups),
        ([cin, 1, 1], [1, 1], 1),
        "a 1x1 convolution"
    );
    let y = c
        .weight
        .val()
        .reshape([1, cout, cin])
        .matmul(x.reshape([b, cin, h * w]));
    let y = match &c.bias {
        Some(bias) => y + bias.val().reshape([1, cout, 1]),
        None => y,
    };
    y.reshape([b, cout, h, w])
}

pub(crate) fn norm(n: &GroupNorm, x: Tensor<4>) -> Tensor<4> {
    op("group norm", n, x, kernels::group_norm)
}

pub(crate) fn act<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    op("SiLU", &(), x, |_, x| kernels::silu(x))
}

fn linear(l: &Linear, x: Tensor<2>) -> Tensor<2> {
    op("linear", l, x, Linear::forward)
}

/// `sin`/`cos` features of the timesteps, `[B, dim]`: frequencies
/// `exp(-ln(10000) * i / (dim/2 - 1))`, sines first.
pub fn timestep_embedding(t: Tensor<1>, dim: usize) -> Tensor<2> {
    let half = dim / 2;
    let device = t.device();
    let denom = (half.max(2) - 1) as f64;
    let freqs: Vec<f32> = (0..half)
        .map(|i| (-(10000f64.ln()) * i as f64 / denom).exp() as f32)
        .collect();
    let freqs = Tensor::<1>::from_floats(freqs.as_slice(), &device).reshape([1, half]);
    let n = t.dims()[0];
    let args = t.reshape([n, 1]).mul(freqs);
    Tensor::cat(vec![args.clone().sin(), args.cos()], 1)
}

/// A residual block with time (and class) injection.
#[derive(Module, Debug)]
pub struct ResBlock {
    conv1: Conv2d,
    conv2: Conv2d,
    norm1: GroupNorm,
    norm2: GroupNorm,
    time: Linear,
    class: Option<Linear>,
    dropout: Dropout,
    skip: Option<Conv2d>,
}

impl ResBlock {
    fn new(cin: usize, cout: usize, emb: usize, conditional: bool, device: &Device) -> Self {
        ResBlock {
            conv1: conv(cin, cout, 3, 1, device),
            conv2: conv(cout, cout, 3, 1, device),
            norm1: group_norm(cout, device),
            norm2: group_norm(cout, device),
            time: LinearConfig::new(emb, cout).init(device),
            class: conditional.then(|| LinearConfig::new(emb, cout).init(device)),
            dropout: DropoutConfig::new(DROPOUT).init(),
            skip: (cin != cout).then(|| conv(cin, cout, 1, 1, device)),
        }
    }

    fn forward(&self, x: Tensor<4>, t: &Tensor<2>, c: Option<&Tensor<2>>) -> Tensor<4> {
        let h = norm(&self.norm1, conv3(&self.conv1, x.clone()));
        let mut e = linear(&self.time, act(t.clone()));
        if let (Some(layer), Some(c)) = (&self.class, c) {
            e = e + linear(layer, act(c.clone()));
        }
        let [b, ch] = e.dims();
        let h = act(h + e.reshape([b, ch, 1, 1]));
        let h = norm(&self.norm2, conv3(&self.conv2, h));
        let h = op("dropout", &self.dropout, h, kernels::dropout);
        let skip = match &self.skip {
            Some(s) => conv1(s, x),
            None => x,
        };
        act(h + skip)
    }
}

/// Multi-head self-attention over the pixels of a feature map, with a residual.
#[derive(Module, Debug)]
pub struct Attention {
    norm: GroupNorm,
    qkv: Conv2d,
    proj: Conv2d,
}

impl Attention {
    fn new(ch: usize, device: &Device) -> Self {
        Attention {
            norm: group_norm(ch, device),
            qkv: conv(ch, ch * 3, 1, 1, device),
            proj: conv(ch, ch, 1, 1, device),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let qkv = conv1(&self.qkv, norm(&self.norm, x.clone()));
        let out = op("attention (QK^T, softmax, AV)", &(), qkv, |_, qkv| {
            attend(qkv)
        });
        x + conv1(&self.proj, out)
    }
}

/// Scaled dot-product attention of the pixels, per head, from the `[b, 3c, h, w]`
/// output of the qkv convolution to `[b, c, h, w]`.
fn attend(qkv: Tensor<4>) -> Tensor<4> {
    let [b, c3, h, w] = qkv.dims();
    let c = c3 / 3;
    let d = c / HEADS;
    // [b, 3, heads, d, hw] -> [b, 3, heads, hw, d]
    let qkv = qkv.reshape([b, 3, HEADS, d, h * w]).swap_dims(3, 4);
    let part = |i: usize| qkv.clone().narrow(1, i, 1).reshape([b, HEADS, h * w, d]);
    let (q, k, v) = (part(0), part(1), part(2));
    let a = softmax(
        q.matmul(k.swap_dims(2, 3))
            .mul_scalar((d as f64).powf(-0.5)),
        3,
    );
    a.matmul(v).swap_dims(2, 3).reshape([b, c, h, w])
}

/// One resolution level of the encoder or decoder.
#[derive(Module, Debug)]
pub struct Stage {
    res: Vec<ResBlock>,
    attn: Option<Attention>,
    /// Strided conv (encoder) or the conv after upsampling (decoder); `None` at the
    /// lowest resolution / the output resolution.
    resample: Option<Conv2d>,
}

/// The UNet.
#[derive(Module, Debug)]
pub struct UNet {
    time_in: Linear,
    time_out: Linear,
    class_emb: Option<Embedding>,
    conv_in: Conv2d,
    downs: Vec<Stage>,
    mid1: ResBlock,
    mid_attn: Attention,
    mid2: ResBlock,
    ups: Vec<Stage>,
    out_norm: GroupNorm,
    out_conv: Conv2d,
    embed_dim: usize,
}

impl UNet {
    /// A freshly initialised UNet; `num_classes` `None` builds the unconditional model.
    pub fn new(arch: &Architecture, num_classes: Option<usize>, device: &Device) -> UNet {
        let base = arch.model_channels;
        let emb = arch.embed_dim();
        let cond = num_classes.is_some();
        let n = arch.channel_multipliers.len();
        let mut chans = vec![];
        let mut now = base;
        let mut downs = Vec::with_capacity(n);
        for (i, &m) in arch.channel_multipliers.iter().enumerate() {
            let out = base * m;
            let res = (0..BLOCKS)
                .map(|j| ResBlock::new(if j == 0 { now } else { out }, out, emb, cond, device))
                .collect();
            downs.push(Stage {
                res,
                attn: arch.use_attention[i].then(|| Attention::new(out, device)),
                resample: (i + 1 < n).then(|| conv(out, out, 3, 2, device)),
            });
            now = out;
            chans.push(now);
        }
        let mid1 = ResBlock::new(now, now, emb, cond, device);
        let mid_attn = Attention::new(now, device);
        let mid2 = ResBlock::new(now, now, emb, cond, device);
        let mut ups = Vec::with_capacity(n);
        for i in (0..n).rev() {
            let out = base * arch.channel_multipliers[i];
            let cin = now + chans.pop().expect("one skip per stage");
            let res = (0..BLOCKS)
                .map(|j| ResBlock::new(if j == 0 { cin } else { out }, out, emb, cond, device))
                .collect();
            ups.push(Stage {
                res,
                attn: arch.use_attention[i].then(|| Attention::new(out, device)),
                resample: (i > 0).then(|| conv(out, out, 3, 1, device)),
            });
            now = out;
        }
        UNet {
            time_in: LinearConfig::new(emb, emb * 4).init(device),
            time_out: LinearConfig::new(emb * 4, emb).init(device),
            class_emb: num_classes.map(|k| EmbeddingConfig::new(k + 1, emb).init(device)),
            conv_in: conv(arch.in_channels, base, 3, 1, device),
            downs,
            mid1,
            mid_attn,
            mid2,
            ups,
            out_norm: group_norm(base, device),
            out_conv: conv(base, arch.in_channels, 3, 1, device),
            embed_dim: emb,
        }
    }

    /// Whether the model has a class embedding (`model.conditioning.type: class`).
    pub fn is_conditional(&self) -> bool {
        self.class_emb.is_some()
    }

    /// Predicted noise for `x` (`[B, C, H, W]`) at timesteps `t` (`[B]`, as floats) with
    /// class labels `y` (`[B]`; the unconditional row is `num_classes`).
    pub fn forward(&self, x: Tensor<4>, t: Tensor<1>, y: Option<Tensor<1, Int>>) -> Tensor<4> {
        let te = linear(
            &self.time_out,
            act(linear(&self.time_in, timestep_embedding(t, self.embed_dim))),
        );
        let ce = match (&self.class_emb, y) {
            (Some(emb), Some(y)) => {
                let b = y.dims()[0];
                Some(emb.forward(y.reshape([b, 1])).reshape([b, self.embed_dim]))
            }
            _ => None,
        };
        let ce = ce.as_ref();
        let mut h = conv3(&self.conv_in, x);
        let mut skips = Vec::with_capacity(self.downs.len());
        for stage in &self.downs {
            for r in &stage.res {
                h = r.forward(h, &te, ce);
            }
            if let Some(a) = &stage.attn {
                h = a.forward(h);
            }
            skips.push(h.clone());
            if let Some(down) = &stage.resample {
                h = conv_down(down, h);
            }
        }
        h = self.mid1.forward(h, &te, ce);
        h = self.mid_attn.forward(h);
        h = self.mid2.forward(h, &te, ce);
        for stage in &self.ups {
            let s = skips.pop().expect("one skip per stage");
            let [_, _, sh, sw] = s.dims();
            let [_, _, hh, hw] = h.dims();
            if (sh, sw) != (hh, hw) {
                h = upsample(h, [sh, sw]);
            }
            h = Tensor::cat(vec![h, s], 1);
            for r in &stage.res {
                h = r.forward(h, &te, ce);
            }
            if let Some(a) = &stage.attn {
                h = a.forward(h);
            }
            if let Some(up) = &stage.resample {
                let [_, _, hh, hw] = h.dims();
                h = conv3(up, upsample(h, [hh * 2, hw * 2]));
            }
        }
        conv3(&self.out_conv, act(norm(&self.out_norm, h)))
    }
}

fn upsample(x: Tensor<4>, size: [usize; 2]) -> Tensor<4> {
    op("bilinear upsample", &size, x, |size, x| bilinear(x, *size))
}

/// Bilinear resize with `align_corners = true`, as the user's `nn.Upsample` and
/// `F.interpolate` calls, written as two small matrix products (one per axis).
///
/// burn's `interpolate` has no backward pass for bilinear mode on its GPU (CubeCL)
/// backends; a separable resize is exactly two linear maps, and matmul differentiates
/// everywhere. Output row `i` of an axis resized from `n` to `m` samples input position
/// `i (n - 1) / (m - 1)`, weighting its two neighbours linearly.
pub fn bilinear(x: Tensor<4>, size: [usize; 2]) -> Tensor<4> {
    let [b, c, h, w] = x.dims();
    let [oh, ow] = size;
    let device = x.device();
    let aw = Tensor::<2>::from_data(TensorData::new(resize_matrix(w, ow), [w, ow]), &device);
    let ah = Tensor::<2>::from_data(TensorData::new(resize_matrix(h, oh), [h, oh]), &device);
    let x = x.reshape([b * c * h, w]).matmul(aw).reshape([b, c, h, ow]);
    x.swap_dims(2, 3)
        .reshape([b * c * ow, h])
        .matmul(ah)
        .reshape([b, c, ow, oh])
        .swap_dims(2, 3)
}

/// The `[n, m]` matrix that resizes an axis of `n` samples to `m` (align_corners).
pub fn resize_matrix(n: usize, m: usize) -> Vec<f32> {
    let mut a = vec![0f32; n * m];
    for i in 0..m {
        let src = if m == 1 {
            0.0
        } else {
            i as f64 * (n - 1) as f64 / (m - 1) as f64
        };
        let i0 = (src.floor() as usize).min(n - 1);
        let i1 = (i0 + 1).min(n - 1);
        let frac = (src - i0 as f64) as f32;
        a[i0 * m + i] += 1.0 - frac;
        a[i1 * m + i] += frac;
    }
    a
}
