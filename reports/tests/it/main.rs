//! reports' integration tests, one binary so the workspace links one test executable per crate:
//! the HTML report built from `results.json` values.

mod html_report;
