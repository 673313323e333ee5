# Redis/PostgreSQL observers (engineer data): the RESP2 request parser and tap, and the
# PostgreSQL framer and tap, against hostile byte streams.
kpiscale_add_fuzz_target(resp_request SOURCE ${CMAKE_CURRENT_LIST_DIR}/resp_request_fuzz.cc
                         LIBS kpiscale::sidecar)
kpiscale_add_fuzz_target(pgwire_framer SOURCE ${CMAKE_CURRENT_LIST_DIR}/pgwire_framer_fuzz.cc
                         LIBS kpiscale::sidecar)
