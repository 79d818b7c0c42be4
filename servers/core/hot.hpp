#pragma once
/// HTTPBENCH_HOT marks a function that every keep-alive request runs through, whatever the
/// backend: GCC places such functions together in .text.hot, so the request path spans a few
/// adjacent code pages instead of being spread over the program's text. In the models that
/// switch to another process or thread for every request, each of those pages may cost an iTLB
/// miss per request (scripts/footprint.py counts the code pages a request touches).
#if defined(__GNUC__)
#define HTTPBENCH_HOT __attribute__((hot))
#else
#define HTTPBENCH_HOT
#endif
