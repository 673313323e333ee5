kpiscale_add_fuzz_target(hpa_inputs SOURCE ${CMAKE_CURRENT_LIST_DIR}/hpa_inputs_fuzz.cc
  LIBS kpiscale::hpa)
