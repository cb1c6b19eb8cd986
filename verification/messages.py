"""Human messages for every stable code, in Vietnamese (default) and English.

:data:`MESSAGES` has the shape the server's error catalogue uses
(``code -> language -> (title, detail)``), so the server can register it as is. The texts tell the
person what to do next ("move to a brighter place"), never how the check works inside.
"""

from __future__ import annotations

from typing import NamedTuple

from verification.errors import CODES

#: Languages with a text for every code; the first is the default.
LANGUAGES: tuple[str, ...] = ("vi", "en")


class Message(NamedTuple):
    """A short title and a one- or two-sentence detail, ready for a phone screen."""

    title: str
    detail: str


#: code -> language -> (title, detail).
MESSAGES: dict[str, dict[str, Message]] = {
    "image_empty": {
        "vi": Message("Không có ảnh", "Không nhận được ảnh nào. Vui lòng chụp lại."),
        "en": Message("No image", "No image was received. Please take the photo again."),
    },
    "image_unreadable": {
        "vi": Message(
            "Không đọc được ảnh",
            "Ảnh bị hỏng hoặc gửi chưa trọn vẹn. Vui lòng chụp và gửi lại.",
        ),
        "en": Message(
            "Image unreadable",
            "The image is damaged or was not sent completely. Please take and send it again.",
        ),
    },
    "unsupported_format": {
        "vi": Message(
            "Định dạng ảnh không được hỗ trợ",
            "Chỉ nhận ảnh JPEG, PNG hoặc WebP. Vui lòng chụp ảnh bằng ứng dụng.",
        ),
        "en": Message(
            "Unsupported image format",
            "Only JPEG, PNG or WebP images are accepted. Please take the photo in the app.",
        ),
    },
    "image_too_large": {
        "vi": Message(
            "Ảnh quá lớn",
            "Dung lượng hoặc kích thước ảnh vượt quá giới hạn. Vui lòng chụp lại.",
        ),
        "en": Message(
            "Image too large",
            "The image file or its dimensions exceed the limit. Please take the photo again.",
        ),
    },
    "face_not_found": {
        "vi": Message(
            "Không tìm thấy khuôn mặt",
            "Không thấy khuôn mặt trong ảnh. Hãy nhìn thẳng vào camera, đủ ánh sáng, rồi chụp lại.",
        ),
        "en": Message(
            "No face found",
            "No face was found. Look straight at the camera in good light and try again.",
        ),
    },
    "multiple_faces": {
        "vi": Message(
            "Có nhiều khuôn mặt",
            "Ảnh có nhiều hơn một khuôn mặt. Chỉ một người trong khung hình khi chụp.",
        ),
        "en": Message(
            "More than one face",
            "The photo shows more than one face. Only you should be in the picture.",
        ),
    },
    "face_too_small": {
        "vi": Message(
            "Khuôn mặt quá nhỏ",
            "Khuôn mặt quá xa camera. Hãy đưa điện thoại lại gần hơn rồi chụp lại.",
        ),
        "en": Message(
            "Face too small",
            "Your face is too far from the camera. Hold the phone closer and try again.",
        ),
    },
    "image_blurred": {
        "vi": Message(
            "Ảnh bị mờ",
            "Ảnh bị nhòe hoặc mất nét. Hãy giữ yên điện thoại, lau ống kính rồi chụp lại.",
        ),
        "en": Message(
            "Image blurred",
            "The photo is blurred. Hold the phone still, wipe the lens and try again.",
        ),
    },
    "image_too_dark": {
        "vi": Message(
            "Ảnh quá tối",
            "Khuôn mặt quá tối. Hãy ra chỗ sáng hơn hoặc bật đèn rồi chụp lại.",
        ),
        "en": Message(
            "Image too dark",
            "Your face is too dark. Move to a brighter place or turn on a light and try again.",
        ),
    },
    "image_too_bright": {
        "vi": Message(
            "Ảnh quá sáng",
            "Khuôn mặt bị chói sáng. Tránh nắng trực tiếp hoặc đèn chiếu thẳng rồi chụp lại.",
        ),
        "en": Message(
            "Image too bright",
            "Your face is over-exposed. Avoid direct sunlight or a lamp facing you and retry.",
        ),
    },
    "head_turned": {
        "vi": Message(
            "Đầu bị nghiêng",
            "Hãy nhìn thẳng vào camera, không quay đầu sang bên, rồi chụp lại.",
        ),
        "en": Message(
            "Head turned",
            "Look straight at the camera without turning your head, then try again.",
        ),
    },
    "eyes_closed": {
        "vi": Message("Mắt đang nhắm", "Hãy mở mắt và nhìn vào camera khi chụp."),
        "en": Message("Eyes closed", "Keep your eyes open and look at the camera."),
    },
    "template_incompatible": {
        "vi": Message(
            "Mẫu khuôn mặt không tương thích",
            "Mẫu khuôn mặt đã đăng ký được tạo bằng mô hình khác. Cần đăng ký lại khuôn mặt.",
        ),
        "en": Message(
            "Incompatible face template",
            "The enrolled face template was made by another model. Re-enrol the face.",
        ),
    },
    "template_invalid": {
        "vi": Message(
            "Mẫu khuôn mặt bị hỏng",
            "Không đọc được mẫu khuôn mặt đã lưu. Cần đăng ký lại khuôn mặt.",
        ),
        "en": Message(
            "Invalid face template",
            "The stored face template cannot be read. Re-enrol the face.",
        ),
    },
    "no_templates": {
        "vi": Message(
            "Chưa đăng ký khuôn mặt",
            "Người này chưa có ảnh khuôn mặt đăng ký. Liên hệ trạm y tế để đăng ký.",
        ),
        "en": Message(
            "No enrolled face",
            "This person has no enrolled face yet. Contact the health station to enrol.",
        ),
    },
    "invalid_challenge": {
        "vi": Message(
            "Yêu cầu kiểm tra không hợp lệ",
            "Yêu cầu kiểm tra người thật không hợp lệ hoặc thiếu ảnh. Vui lòng thử lại.",
        ),
        "en": Message(
            "Invalid liveness challenge",
            "The liveness challenge is invalid or frames are missing. Please try again.",
        ),
    },
    "model_invalid": {
        "vi": Message(
            "Lỗi mô hình nhận diện",
            "Tệp mô hình nhận diện khuôn mặt bị thiếu hoặc sai. Quản trị viên cần kiểm tra.",
        ),
        "en": Message(
            "Face model error",
            "A face model file is missing or wrong. An administrator must check it.",
        ),
    },
    "face_match": {
        "vi": Message("Xác thực thành công", "Khuôn mặt khớp với ảnh đã đăng ký."),
        "en": Message("Verified", "The face matches the enrolled photo."),
    },
    "face_review": {
        "vi": Message(
            "Đang chờ cán bộ xem xét",
            "Chưa thể tự động xác nhận khuôn mặt. Cán bộ trạm y tế sẽ kiểm tra ảnh của bạn.",
        ),
        "en": Message(
            "Waiting for review",
            "The face could not be confirmed automatically. Health-station staff will check it.",
        ),
    },
    "retake_requested": {
        "vi": Message(
            "Chụp thêm một ảnh",
            "Chưa nhận rõ khuôn mặt. Hãy chụp lại ngay: quay mặt về phía ánh sáng, cầm điện thoại "
            "ngang tầm mắt, nhìn thẳng vào máy. Lần chụp này không bị tính là một lần thử.",
        ),
        "en": Message(
            "One more photo, please",
            "The face was not clear enough. Take another photo now: face the light, hold the "
            "phone at eye level and look straight at it. This does not use up an attempt.",
        ),
    },
    "face_mismatch": {
        "vi": Message(
            "Khuôn mặt không khớp",
            "Khuôn mặt không khớp với ảnh đã đăng ký. Hãy tự chụp lại khuôn mặt của mình.",
        ),
        "en": Message(
            "Face does not match",
            "The face does not match the enrolled photo. Please take a selfie of yourself.",
        ),
    },
    "replayed_image": {
        "vi": Message(
            "Ảnh đã được gửi trước đây",
            "Ảnh này trùng với một ảnh đã gửi. Hãy chụp ảnh mới ngay bây giờ.",
        ),
        "en": Message(
            "Photo already used",
            "This photo repeats one sent before. Take a new photo now.",
        ),
    },
    "presentation_suspected": {
        "vi": Message(
            "Ảnh có thể không phải chụp người thật",
            "Ảnh giống ảnh chụp lại từ giấy in hoặc màn hình. Hãy tự chụp khuôn mặt của chính "
            "mình, không chụp ảnh in hay màn hình. Cán bộ trạm y tế sẽ kiểm tra.",
        ),
        "en": Message(
            "Photo may not show a real face",
            "The photo looks like a picture of a print or a screen. Take the photo of yourself, "
            "not of a photo or a screen. Health-station staff will check it.",
        ),
    },
    "liveness_failed": {
        "vi": Message(
            "Kiểm tra người thật không đạt",
            "Không thấy đúng thao tác được yêu cầu (chớp mắt hoặc quay đầu). Vui lòng thử lại.",
        ),
        "en": Message(
            "Liveness check failed",
            "The requested action (blink or head turn) was not seen. Please try again.",
        ),
    },
}


def message(code: str, lang: str = "vi") -> Message:
    """The (title, detail) for ``code`` in ``lang`` (``"vi"`` or ``"en"``; others fall back to
    Vietnamese). Raises ``KeyError`` for an unknown code — codes are a closed list."""
    texts = MESSAGES[code]
    return texts.get(lang) or texts[LANGUAGES[0]]


def _check_catalogue() -> None:
    missing = [c for c in CODES if c not in MESSAGES or set(MESSAGES[c]) != set(LANGUAGES)]
    extra = [c for c in MESSAGES if c not in CODES]
    if missing or extra:  # pragma: no cover - a programming error caught at import and in tests
        raise RuntimeError(f"message catalogue out of date: missing {missing}, extra {extra}")


_check_catalogue()
