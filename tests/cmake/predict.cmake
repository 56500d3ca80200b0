# Predictions as pictures (src/train/predict.c, src/data/label_colors.c,
# prediction_maps.c, io/image_panel.c): colours, maps and resizing against
# the official get_output + cv2.resize on tests/reference/predict_reference.py's
# cases; mtlora-predict end to end on the model reference cases (odd sizes,
# bad inputs, --tasks, .pth, a merged model, every adapter kind, parity with
# the official pipeline on mtlora-infer's logits); RUN.EVAL_PREVIEW in a tiny
# 2-rank training run.
add_executable(test_predict test_predict.c)
target_link_libraries(test_predict PRIVATE mtlora_testutil)

set(MTLORA_PREDICT_CASES ${CMAKE_CURRENT_BINARY_DIR}/predict_cases)
add_test(NAME predict_reference_cases
  COMMAND ${MTLORA_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/reference/predict_reference.py ${MTLORA_PREDICT_CASES})
set_tests_properties(predict_reference_cases PROPERTIES FIXTURES_SETUP predict_cases)
add_test(NAME predict COMMAND test_predict)
set_tests_properties(predict PROPERTIES FIXTURES_REQUIRED predict_cases
  ENVIRONMENT "MTLORA_PREDICT_CASES=${MTLORA_PREDICT_CASES}")

add_test(NAME predict_cli
  COMMAND ${MTLORA_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/predict_cli_test.py $<TARGET_FILE:mtlora-predict>
          $<TARGET_FILE:mtlora-infer> $<TARGET_FILE:mtlora-export> ${MTLORA_MODEL_CASES}
          ${CMAKE_CURRENT_BINARY_DIR}/predict_cli)
set_tests_properties(predict_cli PROPERTIES FIXTURES_REQUIRED model_cases TIMEOUT 600)

add_test(NAME eval_preview
  COMMAND ${MTLORA_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/preview_test.py $<TARGET_FILE:mtlora_dist>
          $<TARGET_FILE:mtlora-pack> ${CMAKE_CURRENT_BINARY_DIR}/eval_preview)
set_tests_properties(eval_preview PROPERTIES TIMEOUT 600)
