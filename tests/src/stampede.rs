//! Many concurrent clients at once, each on its own connection like separate CI jobs: the
//! stampede a popular release causes.

use bytes::Bytes;

use crate::h1::sha256_hex;
use crate::wait::patience;

/// Client `i` GETs `urls[i]`, all at once; returns (status, body) or an error text per client.
pub async fn stampede(urls: &[String]) -> Vec<Result<(u16, Bytes), String>> {
    let tasks: Vec<_> = urls
        .iter()
        .cloned()
        .enumerate()
        .map(|(i, url)| tokio::spawn(async move { get(i, &url).await }))
        .collect();
    let mut out = Vec::with_capacity(tasks.len());
    for t in tasks {
        out.push(
            t.await
                .unwrap_or_else(|e| Err(format!("client task failed: {e}"))),
        );
    }
    out
}

async fn get(i: usize, url: &str) -> Result<(u16, Bytes), String> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(patience(6.0))
        .build()
        .map_err(|e| format!("client {i}: {e}"))?;
    let r = client
        .get(url)
        .send()
        .await
        .map_err(|e| format!("client {i} ({url}): {e}"))?;
    let status = r.status().as_u16();
    let body = r
        .bytes()
        .await
        .map_err(|e| format!("client {i} ({url}): body: {e}"))?;
    Ok((status, body))
}

/// Every client whose answer is not a 200 with a body hashing to `want_sha256`, described.
pub fn wrong_answers(
    results: &[Result<(u16, Bytes), String>],
    urls: &[String],
    want_sha256: &str,
) -> Vec<String> {
    results
        .iter()
        .zip(urls)
        .filter_map(|(r, url)| match r {
            Ok((200, body)) if sha256_hex(body) == want_sha256 => None,
            Ok((status, body)) => Some(format!(
                "{url}: status {status}, {} bytes, sha256 {}: {}",
                body.len(),
                sha256_hex(body),
                String::from_utf8_lossy(&body[..body.len().min(200)])
            )),
            Err(e) => Some(e.clone()),
        })
        .collect()
}
