//! The CLI's errors as Python exceptions: `BadInput` where the CLI exits 2 (the user can
//! fix a file or an argument), its base `Error` for the rest; the message is the CLI's
//! one line, without the `error: ` prefix.

use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::PyErr;

use balance_split::text::one_line;

create_exception!(
    balance_split,
    Error,
    PyException,
    "Any failure of balance-split; the message is the CLI's one-line message."
);
create_exception!(
    balance_split,
    BadInput,
    Error,
    "Bad input (a file, a field, an argument): where the CLI exits with status 2."
);

pub fn from_lib(e: impl Into<balance_split::Error>) -> PyErr {
    let e: balance_split::Error = e.into();
    let message = one_line(&e.to_string()).into_owned();
    if e.exit_code() == 2 {
        BadInput::new_err(message)
    } else {
        Error::new_err(message)
    }
}

pub fn bad(message: impl Into<String>) -> PyErr {
    BadInput::new_err(message.into())
}
