//! Matrix products on `f32` slices through the `gemm` crate (the one burn's CPU backend
//! uses), behind bounds-checked views: `gemm::gemm` takes raw pointers and strides.

/// A read-only matrix over a slice: element `(i, j)` is `data[i * row_stride + j * col_stride]`.
#[derive(Clone, Copy)]
pub struct View<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

impl<'a> View<'a> {
    /// The row-major `rows x cols` matrix that `data` holds exactly.
    pub fn rows(data: &'a [f32], rows: usize, cols: usize) -> Self {
        assert_eq!(data.len(), rows * cols, "a {rows}x{cols} matrix");
        View {
            data,
            rows,
            cols,
            row_stride: cols,
            col_stride: 1,
        }
    }

    /// The same elements read as the transpose, without a copy.
    pub fn transposed(self) -> Self {
        View {
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
            ..self
        }
    }
}

/// `dst [m, n] (row-major) = a [m, k] @ b [k, n]`, or `dst += a @ b` with `accumulate`,
/// on the calling thread (callers spread samples over threads themselves).
pub fn matmul(dst: &mut [f32], a: View, b: View, accumulate: bool) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert_eq!(b.rows, k, "inner dimensions of a product");
    assert_eq!(dst.len(), m * n, "a {m}x{n} product");
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            dst.fill(0.0);
        }
        return;
    }
    // The last element each view reads lies inside its slice (the views' constructors
    // fixed the strides from the slices' lengths).
    assert!((m - 1) * a.row_stride + (k - 1) * a.col_stride < a.data.len());
    assert!((k - 1) * b.row_stride + (n - 1) * b.col_stride < b.data.len());
    // SAFETY: every index gemm forms is `(i, j)` within the shapes checked above, through
    // the strides of views whose extents lie within their slices; `dst` is exclusively
    // borrowed and does not alias the inputs (shared borrows).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            a.data.as_ptr(),
            a.col_stride as isize,
            a.row_stride as isize,
            b.data.as_ptr(),
            b.col_stride as isize,
            b.row_stride as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn products_plain_transposed_and_accumulated_are_the_definition() {
        let a: Vec<f32> = (0..6).map(|v| v as f32).collect(); // [[0 1 2] [3 4 5]]
        let b: Vec<f32> = (0..6).map(|v| (v * v) as f32).collect(); // [[0 1] [4 9] [16 25]]
        let mut dst = vec![0f32; 4];
        matmul(&mut dst, View::rows(&a, 2, 3), View::rows(&b, 3, 2), false);
        assert_eq!(dst, [36.0, 59.0, 96.0, 164.0]);
        matmul(&mut dst, View::rows(&a, 2, 3), View::rows(&b, 3, 2), true);
        assert_eq!(dst, [72.0, 118.0, 192.0, 328.0]);
        // a^T [3, 2] @ a [2, 3]
        let mut gram = vec![0f32; 9];
        let at = View::rows(&a, 2, 3).transposed();
        matmul(&mut gram, at, View::rows(&a, 2, 3), false);
        assert_eq!(gram, [9.0, 12.0, 15.0, 12.0, 17.0, 22.0, 15.0, 22.0, 29.0]);
    }
}
