#pragma once
#include <string_view>

namespace httpbench::core {

/// The built-in document root's index.html: 305 bytes, the size of the page Kerneis &
/// Chroboczek served in "Are events fast?" (2009).
inline constexpr std::string_view default_index_html = R"(<!DOCTYPE html>
<html>
<head><title>httpbench</title></head>
<body>
<h1>httpbench</h1>
<p>This page is served by every httpbench backend. It is 305 bytes long, the size of the page
Kerneis and Chroboczek served in "Are events fast?" (2009).</p>
<p>One shared core, many server models.</p>
</body>
</html>
)";
static_assert(default_index_html.size() == 305, "the paper's page is 305 bytes");

}  // namespace httpbench::core
