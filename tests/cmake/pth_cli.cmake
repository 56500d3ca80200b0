# pth_cli: the official world's .pth files through mtlora-infer and
# mtlora-export (tests/pth_cli_test.py): official-layout checkpoints (zip
# and legacy) bit-identical to safetensors, the Swin release and timm
# layouts as --pretrained, --output X.pth read by torch.load(weights_only),
# and the refusals (missing tensor, wrong shape, tar, truncated, os.system).
add_test(NAME pth_cli
  COMMAND ${MTLORA_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/pth_cli_test.py $<TARGET_FILE:mtlora-infer>
          $<TARGET_FILE:mtlora-export> ${MTLORA_MODEL_CASES} ${CMAKE_CURRENT_BINARY_DIR}/pth_cli
          $<TARGET_FILE:mtlora_dist> ${PROJECT_SOURCE_DIR}/../shared/spec/official_state_dict_swin_t_448_r64.tsv)
set_tests_properties(pth_cli PROPERTIES FIXTURES_REQUIRED model_cases TIMEOUT 600)
