/* placeholder: being written */
typedef int mt_placeholder_image_codec;
