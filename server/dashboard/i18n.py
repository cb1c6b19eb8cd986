"""Texts of the dashboard in Vietnamese (default) and English, and how a request picks one.

The words follow the shared glossary (GLOSSARY.md). ``?lang=en`` (or ``vi``) is kept in the
session; otherwise ``Accept-Language`` decides; otherwise Vietnamese.

Over 500 lines on purpose: this is a message catalogue (every text of every page in both
languages, ~400 lines of data, and the Vietnamese wording of the schedule-policy errors).
Translators read and edit it as one list; split by page it would hide a missing or
inconsistent term. The code is the ~60 lines at the end.
"""

from __future__ import annotations

from flask import request, session

from server.http import problem as errors

LANGUAGES = ("vi", "en")

#: key -> (Vietnamese, English).
TEXTS: dict[str, tuple[str, str]] = {
    "app_name": ("isocheck — Giám sát cách ly tại nhà", "isocheck — Home isolation monitoring"),
    "nav_alerts": ("Cảnh báo", "Alerts"),
    "nav_reviews": ("Duyệt điểm danh", "Check-in review"),
    "nav_persons": ("Người cách ly", "People"),
    "nav_enrol": ("Đăng ký mới", "Enrol"),
    "nav_stats": ("Thống kê", "Statistics"),
    "nav_password": ("Đổi mật khẩu", "Change password"),
    "logout": ("Đăng xuất", "Log out"),
    "login": ("Đăng nhập", "Log in"),
    "login_title": ("Đăng nhập cán bộ", "Staff login"),
    "username": ("Tên đăng nhập", "Username"),
    "password": ("Mật khẩu", "Password"),
    "current_password": ("Mật khẩu hiện tại", "Current password"),
    "new_password": ("Mật khẩu mới (ít nhất 10 ký tự)", "New password (at least 10 characters)"),
    "new_password2": ("Nhập lại mật khẩu mới", "New password again"),
    "save": ("Lưu", "Save"),
    "password_changed": (
        "Đã đổi mật khẩu. Các phiên đăng nhập và mã truy cập khác đã bị thu hồi.",
        "Password changed. Other sessions and API tokens were revoked.",
    ),
    "password_wrong": ("Mật khẩu hiện tại không đúng.", "The current password is wrong."),
    "password_mismatch": ("Hai mật khẩu mới không giống nhau.", "The new passwords differ."),
    "password_short": (
        "Mật khẩu mới phải có ít nhất 10 ký tự.",
        "The new password needs at least 10 characters.",
    ),
    "password_same": (
        "Mật khẩu mới phải khác mật khẩu hiện tại.",
        "The new password must differ from the current one.",
    ),
    "logged_out": ("Bạn đã đăng xuất.", "You are logged out."),
    "login_needed": ("Vui lòng đăng nhập.", "Please log in."),
    "csrf_failed": (
        "Biểu mẫu đã hết hạn hoặc không hợp lệ. Vui lòng tải lại trang và thử lại.",
        "The form expired or is invalid. Reload the page and try again.",
    ),
    "not_found": ("Không tìm thấy", "Not found"),
    "not_found_detail": (
        "Không tìm thấy trang hoặc dữ liệu này trong phạm vi của bạn.",
        "This page or record does not exist within your area.",
    ),
    "back": ("Quay lại", "Back"),
    # alerts
    "alerts_title": ("Hàng đợi cảnh báo", "Alert queue"),
    "alerts_empty": ("Không có cảnh báo nào cần xử lý.", "No alerts to handle."),
    "auto_refresh": ("Tự động cập nhật mỗi {n} giây", "Refreshes every {n} seconds"),
    "updated_at": ("Cập nhật lúc", "Updated at"),
    "filter": ("Lọc", "Filter"),
    "all": ("Tất cả", "All"),
    "kind": ("Loại", "Kind"),
    "state": ("Trạng thái", "State"),
    "area": ("Khu vực", "Area"),
    "severity": ("Mức độ", "Severity"),
    "person": ("Người cách ly", "Person"),
    "raised_at": ("Phát sinh", "Raised"),
    "age": ("Thời gian chờ", "Waiting"),
    "escalation": ("Cấp xử lý", "Level"),
    "deadline": ("Hạn tiếp nhận", "Acknowledge by"),
    "overdue": ("Quá hạn", "Overdue"),
    "checkin_now": ("Yêu cầu điểm danh ngay", "Ask for a check-in now"),
    "checkin_now_help": (
        "Mở một lần điểm danh đột xuất ngay bây giờ; điện thoại được báo trong vài giây.",
        "Opens a spot check now; the phone is told within seconds.",
    ),
    "checkin_now_ward": ("Yêu cầu cả phường điểm danh ngay", "Ask the whole ward to check in now"),
    "checkin_now_ok": (
        "Đã yêu cầu điểm danh ngay: {n} người.",
        "Check-in requested now: {n} people.",
    ),
    "checkin_now_quiet_hours": (
        "Không yêu cầu điểm danh trong giờ yên lặng.",
        "No check-in is asked for in quiet hours.",
    ),
    "checkin_now_prompt_live": (
        "Đã có một lần điểm danh đang mở hoặc sắp mở.",
        "A check-in prompt is already open or about to open.",
    ),
    "checkin_now_too_soon": (
        "Mỗi người chỉ được yêu cầu một lần trong 15 phút.",
        "One request per person per 15 minutes.",
    ),
    "checkin_now_not_active": (
        "Người này hiện không trong thời gian cách ly.",
        "This person is not in home isolation now.",
    ),
    "occurrences": ("lần", "times"),
    "occurrences_title": (
        "Cảnh báo còn mở đã gộp các lần lặp lại (không gửi thông báo lần nữa)",
        "The open alert absorbed its repeats (nobody was told again)",
    ),
    "last_occurred": ("lần cuối", "last"),
    "occurrence_evidence": ("Các lần lặp lại", "Repeats"),
    "actions": ("Thao tác", "Actions"),
    "note": ("Ghi chú", "Note"),
    "note_optional": ("Ghi chú (không bắt buộc)", "Note (optional)"),
    "note_required": ("Cần nhập ghi chú.", "A note is required."),
    "acknowledge": ("Tiếp nhận", "Acknowledge"),
    "resolve": ("Xử lý xong", "Resolve"),
    "handle": ("Xử lý…", "Handle…"),
    "acknowledged_ok": ("Đã tiếp nhận cảnh báo.", "Alert acknowledged."),
    "resolved_ok": ("Đã xử lý xong cảnh báo.", "Alert resolved."),
    "alert_acknowledged": (
        "Cảnh báo này đã được tiếp nhận trước đó.",
        "This alert was already acknowledged.",
    ),
    "alert_resolved": ("Cảnh báo này đã được xử lý xong.", "This alert is already resolved."),
    "alert_open": ("Cảnh báo này chưa được tiếp nhận.", "This alert is not acknowledged yet."),
    "acknowledged_by": ("Người tiếp nhận", "Acknowledged by"),
    "minutes_short": ("phút", "min"),
    "hours_short": ("giờ", "h"),
    "days_short": ("ngày", "d"),
    # reviews
    "reviews_title": ("Điểm danh cần duyệt", "Check-ins to review"),
    "reviews_empty": ("Không có lượt điểm danh nào cần duyệt.", "Nothing to review."),
    "reviews_all": ("Hiện cả lỗi chất lượng ảnh", "Also show image-quality refusals"),
    "received_at": ("Thời điểm gửi", "Received"),
    "decision": ("Kết quả máy", "Machine decision"),
    "reason": ("Lý do", "Reason"),
    "distance_score": ("Khoảng cách khuôn mặt", "Face distance"),
    "thresholds": ("Ngưỡng chấp nhận / xem xét", "Accept / review thresholds"),
    "pad": ("Chống giả mạo (ảnh in, màn hình)", "Presentation-attack check (print, screen)"),
    "pad_score": ("Khả năng là người thật", "Likelihood of a real face"),
    "pad_cues": ("Các dấu hiệu (đóng góp vào điểm)", "Cues (contribution to the score)"),
    "pad_off": (
        "Tắt: chưa cấu hình tệp mô hình, ảnh in hoặc màn hình không được phát hiện",
        "Off: no model file configured; prints and screens are not detected",
    ),
    "pad_model_invalid": (
        "Lỗi: tệp mô hình sai mã kiểm tra, chức năng đang tắt",
        "Error: the model file's checksum is wrong; the check is off",
    ),
    "pad_suspected_help": (
        "Ảnh có thể là ảnh chụp lại từ giấy in hoặc màn hình. Hãy xem viền giấy/màn hình, "
        "vân sáng, màu sắc. Đo trên ảnh thật: khoảng 1–4 % ảnh selfie thật bị đánh dấu nhầm; "
        "kết quả này không tự động phạt người cách ly.",
        "The selfie may be a photo of a print or a screen: look for a paper or screen edge, "
        "glare, colours. Measured on real captures, 1–4 % of genuine selfies are flagged by "
        "mistake; this result never penalises the person on its own.",
    ),
    "open_review": ("Duyệt", "Review"),
    "review_title": ("Duyệt lượt điểm danh", "Review a check-in"),
    "enrolment_photo": ("Ảnh đăng ký", "Enrolment photo"),
    "selfie": ("Ảnh selfie điểm danh", "Check-in selfie"),
    "no_photo": ("Không có ảnh", "No photo"),
    "home": ("Nhà", "Home"),
    "location": ("Vị trí so với nhà", "Location vs home"),
    "distance_home": ("Cách nhà", "From home"),
    "accuracy": ("Sai số GPS", "GPS accuracy"),
    "geofence_radius": ("Bán kính cho phép", "Allowed radius"),
    "same_person": ("Cùng một người", "Same person"),
    "not_same_person": ("Không phải cùng một người", "Not the same person"),
    "review_note_help": (
        "Ghi lý do quyết định (bắt buộc, được lưu vào nhật ký).",
        "Why you decide so (required, kept in the audit trail).",
    ),
    "reviewed_same": (
        "Đã xác nhận cùng một người: lượt điểm danh được tính là hợp lệ.",
        "Confirmed the same person: the check-in counts as verified.",
    ),
    "reviewed_not_same": (
        "Đã ghi nhận không phải cùng một người: cảnh báo xác thực thất bại được giữ.",
        "Recorded as not the same person: a failed-verification alert stands.",
    ),
    "already_reviewed": (
        "Lượt điểm danh này đã được duyệt.",
        "This check-in was already reviewed.",
    ),
    "review_image_audit": (
        "Mỗi lần xem ảnh khuôn mặt đều được ghi vào nhật ký.",
        "Every view of a face image is recorded in the audit trail.",
    ),
    # persons
    "persons_title": ("Danh sách người cách ly", "People in isolation"),
    "search": ("Tìm theo tên hoặc số điện thoại", "Search by name or phone"),
    "search_button": ("Tìm", "Search"),
    "sort": ("Sắp xếp", "Sort"),
    "sort_risk": ("Nguy cơ cao trước", "Highest risk first"),
    "sort_name": ("Theo tên", "By name"),
    "sort_end": ("Sắp kết thúc cách ly", "Isolation ending soonest"),
    "persons_empty": ("Không tìm thấy ai.", "Nobody found."),
    "name": ("Họ tên", "Name"),
    "phone": ("Điện thoại", "Phone"),
    "ward": ("Phường/xã", "Ward"),
    "category": ("Phân loại", "Category"),
    "risk": ("Mức nguy cơ", "Risk level"),
    "status": ("Tình trạng", "Status"),
    "isolation": ("Thời gian cách ly", "Isolation period"),
    "isolation_end": ("Kết thúc cách ly", "Isolation ends"),
    "compliance": ("Tỷ lệ điểm danh", "Check-in compliance"),
    "compliance_detail": (
        "đã điểm danh / đến hạn hoặc đã kết thúc", "completed / due or already decided"
    ),
    "last_checkin": ("Điểm danh gần nhất", "Last check-in"),
    "never": ("Chưa có", "None yet"),
    "doctor": ("Bác sĩ phụ trách", "Doctor"),
    "none": ("Chưa có", "None"),
    "address": ("Địa chỉ", "Address"),
    "high_risk_group": ("Nhóm nguy cơ cao", "High-risk group"),
    "declarations": ("Khai báo y tế", "Health declarations"),
    "declarations_empty": ("Chưa có khai báo y tế.", "No health declarations yet."),
    "spo2_chart": ("SpO2 (%) theo thời gian", "SpO2 (%) over time"),
    "temperature_chart": ("Nhiệt độ (°C) theo thời gian", "Temperature (°C) over time"),
    "measured_at": ("Thời điểm đo", "Measured"),
    "temperature": ("Nhiệt độ (°C)", "Temperature (°C)"),
    "spo2": ("SpO2 (%)", "SpO2 (%)"),
    "heart_rate": ("Nhịp tim", "Heart rate"),
    "symptoms": ("Triệu chứng", "Symptoms"),
    "alert_history": ("Lịch sử cảnh báo", "Alert history"),
    "audit_trail": ("Nhật ký thao tác", "Audit trail"),
    "fhir_record": ("Hồ sơ FHIR (R4)", "FHIR record (R4)"),
    "audit_when": ("Thời điểm", "When"),
    "audit_who": ("Người thực hiện", "Who"),
    "audit_what": ("Thao tác", "What"),
    "audit_from": ("Từ địa chỉ", "From"),
    "actions_title": ("Thao tác", "Actions"),
    "extend_isolation": ("Gia hạn cách ly thêm (ngày)", "Extend isolation by (days)"),
    "extend": ("Gia hạn", "Extend"),
    "end_isolation": ("Kết thúc cách ly ngay", "End isolation now"),
    "end_confirm": (
        "Xác nhận kết thúc cách ly (không thể hoàn tác)",
        "Confirm ending isolation (cannot be undone)",
    ),
    "isolation_extended": ("Đã gia hạn cách ly.", "Isolation extended."),
    "isolation_ended": (
        "Đã kết thúc cách ly; các yêu cầu điểm danh sắp tới đã bị hủy.",
        "Isolation ended; upcoming check-in prompts were cancelled.",
    ),
    "isolation_invalid": (
        "Số ngày gia hạn không hợp lệ (1–30, tổng thời gian tối đa 60 ngày).",
        "Invalid extension (1–30 days, at most 60 days in total).",
    ),
    "isolation_released": (
        "Người này đã kết thúc cách ly.",
        "This person's isolation has already ended.",
    ),
    "schedule_policy": ("Lịch điểm danh riêng (JSON)", "Own check-in schedule (JSON)"),
    "schedule_help": (
        'Để trống để dùng lịch của phường. Ví dụ: {"spot_checks_per_day": 2}',
        'Empty = the ward\'s schedule. Example: {"spot_checks_per_day": 2}',
    ),
    "schedule_saved": ("Đã lưu lịch điểm danh.", "Schedule saved."),
    "schedule_invalid": ("Lịch điểm danh không hợp lệ", "Invalid schedule"),
    "reissue_code": ("Cấp lại mã kích hoạt", "Re-issue activation code"),
    "activation_code": ("Mã kích hoạt", "Activation code"),
    "activation_once": (
        "Mã chỉ hiển thị một lần. Các mã cũ chưa dùng đã hết hiệu lực.",
        "Shown only once. Earlier unused codes no longer work.",
    ),
    "qr_payload": ("Nội dung mã QR", "QR payload"),
    "expires_at": ("Hết hạn", "Expires"),
    "assign_doctor": ("Phân công bác sĩ", "Assign a doctor"),
    "doctor_assigned": ("Đã phân công bác sĩ.", "Doctor assigned."),
    "no_doctor": ("Không phân công", "No doctor"),
    "add_declaration": ("Nhập khai báo y tế thay người bệnh", "Enter a declaration for the person"),
    "declaration_saved": ("Đã lưu khai báo y tế.", "Declaration saved."),
    "declaration_invalid": ("Khai báo không hợp lệ", "Invalid declaration"),
    "open_person": ("Xem", "Open"),
    # enrolment
    "enrol_title": ("Đăng ký người cách ly tại nhà", "Enrol a person in home isolation"),
    "full_name": ("Họ và tên", "Full name"),
    "date_of_birth": ("Ngày sinh", "Date of birth"),
    "national_id": ("Số CMND/CCCD", "National ID"),
    "home_address": ("Địa chỉ nơi cách ly", "Home address"),
    "home_lat": ("Vĩ độ nhà", "Home latitude"),
    "home_lon": ("Kinh độ nhà", "Home longitude"),
    "radius_m": ("Bán kính (m)", "Radius (m)"),
    "isolation_start": ("Ngày bắt đầu cách ly", "Isolation starts"),
    "isolation_days": ("Số ngày cách ly", "Isolation days"),
    "comorbidities": ("Bệnh nền (cách nhau bởi dấu phẩy)", "Comorbidities (comma-separated)"),
    "pregnant": ("Đang mang thai", "Pregnant"),
    "photos": ("Ảnh khuôn mặt (1–3 ảnh)", "Face photos (1–3)"),
    "photos_help": (
        "Ảnh chụp thẳng, đủ sáng, chỉ một khuôn mặt. Ảnh được mã hóa khi lưu.",
        "Frontal, well lit, one face only. Photos are encrypted at rest.",
    ),
    "photos_required": ("Cần 1 đến 3 ảnh khuôn mặt.", "1 to 3 face photos are needed."),
    "photo_refused": ("Ảnh không đạt", "Photo refused"),
    "enrolled_ok": ("Đã đăng ký người cách ly.", "Person enrolled."),
    "enrol": ("Đăng ký", "Enrol"),
    "form_errors": ("Vui lòng sửa các lỗi dưới đây.", "Please correct the errors below."),
    "invalid_value": ("Giá trị không hợp lệ", "Invalid value"),
    # statistics
    "stats_title": ("Thống kê theo khu vực và ngày", "Statistics by area and day"),
    "stats_by_district": (
        "Theo quận/huyện: chọn một quận/huyện để xem từng phường/xã (tệp CSV có từng phường/xã).",
        "By district: choose a district to see its wards (the CSV has every ward).",
    ),
    "stats_as_of": (
        "Số liệu hôm nay (cập nhật mỗi 5 phút) tính đến",
        "Today's figures (refreshed every 5 minutes) as of",
    ),
    "days": ("Số ngày", "Days"),
    "day": ("Ngày", "Day"),
    "monitored": ("Số người theo dõi", "People monitored"),
    "prompts_due": ("Yêu cầu đến hạn", "Prompts due"),
    "prompts_done": ("Đã điểm danh", "Completed"),
    "alerts_by_kind": ("Cảnh báo theo loại", "Alerts by kind"),
    "ack_median": ("Trung vị thời gian tiếp nhận (phút)", "Median time to acknowledge (min)"),
    "compliance_chart": ("Tỷ lệ điểm danh theo ngày (%)", "Check-in compliance by day (%)"),
    "alerts_chart": ("Số cảnh báo theo ngày và loại", "Alerts by day and kind"),
    "export_csv": ("Tải CSV", "Download CSV"),
    "total": ("Tổng", "Total"),
    "no_data": ("Không có dữ liệu", "No data"),
    # issue 19, item 9: why thresholds differ from the README's, why an alert was raised
    "threshold_note_shifted": (
        "Ngưỡng chấp nhận {accept} chặt hơn mức {base} ghi trong README ({env}, cho một ảnh mẫu)"
        " vì người này có {k} ảnh mẫu: ảnh chụp được so với từng ảnh mẫu và lấy kết quả gần nhất,"
        " mỗi ảnh mẫu thêm là thêm một cơ hội để người khác khớp nhầm, nên ngưỡng giảm {shift}"
        " để giữ tỷ lệ khớp nhầm ở 0,1 %. Ngưỡng xem xét {review} không đổi.",
        "The accept threshold {accept} is tighter than the README's {base} ({env}, for one"
        " template) because this person has {k} templates: the selfie is compared with each and"
        " the closest counts, so every extra template is one more chance for someone else to"
        " match; the threshold drops by {shift} to keep false matches at 0.1 %. The review"
        " threshold {review} does not change.",
    ),
    "threshold_note_single": (
        "Một ảnh mẫu: ngưỡng chấp nhận {accept} là mức cấu hình ({env}), ngưỡng xem xét"
        " {review}.",
        "One template: the accept threshold {accept} is the configured one ({env}), the review"
        " threshold {review}.",
    ),
    "threshold_note_retake": (
        "Đây là lần chụp lại: hai lần chụp cùng được chấp nhận khi khoảng cách trung bình"
        " ≤ {retake}.",
        "This is a retake: the two captures are accepted together when their mean distance is"
        " ≤ {retake}.",
    ),
    "why": ("Lý do", "Why"),
    "why_missed": (
        "Không điểm danh trong khung {opens}–{due} ngày {day}",
        "No check-in in the window {opens}–{due} on {day}",
    ),
    "why_failed": (
        "Hết lượt thử trong khung {opens}–{due} ngày {day}",
        "No attempts left in the window {opens}–{due} on {day}",
    ),
    "why_window": ("khung {opens}–{due} ngày {day}", "window {opens}–{due} on {day}"),
    "why_outside": ("Cách nhà {m} m", "{m} m from home"),
    "why_non_reporting": (
        "{h} giờ không khai báo y tế", "{h} hours without a health declaration"
    ),
    "per_minute": ("lần/phút", "bpm"),
    # issue 19, item 7: the home position from the phone, confirmed by staff
    "home_from_phone_help": (
        "Có thể để trống vĩ độ và kinh độ: khi người cách ly kích hoạt ứng dụng lúc đang ở nhà,"
        " điện thoại gửi vị trí và cán bộ xác nhận trên trang của người đó.",
        "Latitude and longitude may stay empty: when the person activates the app at home, the"
        " phone sends its position and staff confirm it on the person's page.",
    ),
    "home_at_activation": (
        "Chưa có vị trí nhà: hướng dẫn người cách ly mở mã này khi đang ở nhà và bấm «Tôi đang ở"
        " nhà — gửi vị trí»; sau đó xác nhận vị trí trên trang của người đó.",
        "No home position yet: ask the person to open this code at home and tap \"I am at home —"
        " send my position\"; then confirm it on their page.",
    ),
    "home_pending_title": ("Vị trí nhà chờ xác nhận", "Home position awaiting confirmation"),
    "home_proposed_at": ("Điện thoại gửi vị trí lúc", "The phone sent its position at"),
    "home_on_map": ("Xem trên bản đồ", "See on a map"),
    "home_coarse": (
        "Vị trí kém chính xác (trên 100 m): nên yêu cầu gửi lại ngoài trời hoặc nhập tay.",
        "A coarse fix (over 100 m): ask for it again outdoors, or type the position.",
    ),
    "home_confirm_help": (
        "Xác nhận khi chắc chắn người này đang ở nhà lúc kích hoạt (gọi điện hỏi nếu cần)."
        " Trước khi xác nhận, điểm danh không bị xét theo vị trí nhà.",
        "Confirm when sure the person was at home when activating (call them if needed)."
        " Until then check-ins are not judged against home.",
    ),
    "home_confirm": ("Xác nhận đây là nhà", "Confirm as home"),
    "home_reject": ("Không phải nhà", "Not the home"),
    "home_needed": (
        "Chưa có vị trí: hướng dẫn người cách ly kích hoạt ứng dụng khi đang ở nhà và chọn"
        " «Tôi đang ở nhà» (cấp lại mã kích hoạt nếu cần), hoặc nhập tay bên dưới.",
        "No position yet: ask the person to activate the app at home and tick \"I am at"
        " home\" (re-issue the activation code if needed), or type it below.",
    ),
    "home_typed": ("Lưu vị trí nhập tay", "Save the typed position"),
    "home_confirmed": ("Đã lưu vị trí nhà.", "Home position saved."),
    "home_rejected": (
        "Đã bỏ vị trí điện thoại gửi; vị trí nhà vẫn chờ.",
        "The phone's position was dropped; the home position is still awaited.",
    ),
    "home_nothing": ("Không có vị trí nào để xác nhận.", "There is no position to confirm."),
    # issue 19, item 6: the schedule as a form
    "sched_title": ("Lịch điểm danh", "Check-in schedule"),
    "sched_own": (
        "Người này có lịch riêng (khác lịch của phường ở các ô đã đổi).",
        "This person has a schedule of their own (differing from the ward's where changed).",
    ),
    "sched_ward": (
        "Đang dùng lịch của phường. Đổi một ô để đặt lịch riêng cho người này.",
        "The ward's schedule applies. Change a field to give this person their own.",
    ),
    "sched_windows": ("Khung giờ điểm danh hằng ngày", "Daily check-in windows"),
    "sched_windows_help": (
        "Giờ địa phương; mỗi khung dài ít nhất bằng thời gian phản hồi, không trùng nhau và"
        " không rơi vào giờ yên lặng. Điền dòng trống để thêm khung.",
        "Local time; each window at least as long as the response time, not overlapping"
        " another or quiet hours. Fill the empty row to add a window.",
    ),
    "sched_window": ("Khung", "Window"),
    "sched_new": ("thêm mới", "new"),
    "sched_from": ("Từ", "From"),
    "sched_to": ("Đến", "To"),
    "sched_remove": ("Bỏ khung này", "Remove this window"),
    "sched_response": ("Thời gian phản hồi (phút)", "Minutes to answer"),
    "sched_spot": ("Số lần kiểm tra đột xuất mỗi ngày", "Spot checks per day"),
    "sched_quiet_start": ("Giờ yên lặng bắt đầu", "Quiet hours start"),
    "sched_quiet_end": ("Giờ yên lặng kết thúc", "Quiet hours end"),
    "sched_reset": ("Dùng lại lịch của phường", "Use the ward's schedule"),
    "sched_advanced": ("Nâng cao: các trường khác (JSON)", "Advanced: other fields (JSON)"),
    "sched_err_time": ("Cần giờ dạng HH:MM.", "A time as HH:MM is needed."),
    "sched_err_window_order": (
        "Giờ kết thúc phải sau giờ bắt đầu (trong cùng ngày).",
        "The end must be after the start (same day).",
    ),
    "sched_err_no_window": ("Cần ít nhất một khung giờ.", "At least one window is needed."),
    "sched_err_range": ("Cần số nguyên từ {low} đến {high}.", "A whole number {low}–{high}."),
    "sched_err_short": (
        "Khung ngắn hơn thời gian phản hồi ({n} phút).",
        "The window is shorter than the response time ({n} min).",
    ),
    "sched_err_quiet": ("Khung rơi vào giờ yên lặng.", "The window falls in quiet hours."),
    "sched_err_overlap": ("Trùng với khung {n}.", "Overlaps window {n}."),
    "sched_err_remind": (
        "Phải dài hơn thời gian nhắc trước hạn.",
        "Must be longer than the reminder lead time.",
    ),
    "sched_err_waking": (
        "Giờ thức ngắn hơn một lần phản hồi: không thể kiểm tra đột xuất.",
        "Waking hours are shorter than one response: no spot check fits.",
    ),
    "sched_err_quiet_waking": (
        "Giờ yên lặng trùng giờ thức (khi có kiểm tra đột xuất).",
        "Quiet hours overlap waking hours (with spot checks).",
    ),
    "sched_err_quiet_short": (
        "Giờ yên lặng phải kéo dài ít nhất 60 phút (hoặc bắt đầu = kết thúc).",
        "Quiet hours must last at least 60 minutes (or start = end).",
    ),
    "sched_err_quiet_reminder": (
        "Giờ nhắc khai báo y tế rơi vào giờ yên lặng.",
        "The health-declaration reminder falls in quiet hours.",
    ),
}

#: Enum values shown to people.
LABELS: dict[str, dict[str, tuple[str, str]]] = {
    "alert_kind": {
        "missed_checkin": ("Không điểm danh", "Missed check-in"),
        "failed_verification": ("Xác thực khuôn mặt thất bại", "Face verification failed"),
        "outside_home": ("Ở ngoài nơi cách ly", "Outside home"),
        "severe_symptoms": ("Dấu hiệu chuyển nặng", "Severe signs"),
        "high_risk": ("Nhóm nguy cơ cao", "High-risk group"),
        "non_reporting": ("Không khai báo y tế", "Not reporting"),
    },
    "alert_state": {
        "open": ("Chưa tiếp nhận", "Open"),
        "acknowledged": ("Đã tiếp nhận", "Acknowledged"),
        "resolved": ("Đã xử lý xong", "Resolved"),
    },
    "level": {
        "0": ("Phường/xã", "Ward"),
        "1": ("Quận/huyện", "District"),
        "2": ("Thành phố/tỉnh", "City"),
    },
    "risk": {
        "green": ("Nguy cơ thấp (xanh)", "Low (green)"),
        "yellow": ("Nguy cơ trung bình (vàng)", "Medium (yellow)"),
        "orange": ("Nguy cơ cao (cam)", "High (orange)"),
        "red": ("Nguy cơ rất cao (đỏ)", "Very high (red)"),
    },
    "person_status": {
        "enrolled": ("Đã đăng ký, chưa bắt đầu", "Enrolled, not started"),
        "active": ("Đang cách ly tại nhà", "In home isolation"),
        "released": ("Đã kết thúc cách ly", "Released"),
    },
    "decision": {
        "verified": ("Hợp lệ", "Verified"),
        "review": ("Cần xem xét", "Needs review"),
        "rejected": ("Bị từ chối", "Rejected"),
    },
    "category": {
        "F0": ("F0 (người mắc COVID-19)", "F0 (confirmed case)"),
        "F1": ("F1 (người tiếp xúc gần)", "F1 (close contact)"),
    },
    "symptom": {
        "fever": ("Sốt", "Fever"),
        "cough": ("Ho", "Cough"),
        "sore_throat": ("Đau họng", "Sore throat"),
        "runny_nose": ("Sổ mũi", "Runny nose"),
        "fatigue": ("Mệt mỏi", "Fatigue"),
        "muscle_pain": ("Đau cơ", "Muscle pain"),
        "headache": ("Đau đầu", "Headache"),
        "loss_of_taste_or_smell": ("Mất vị giác hoặc khứu giác", "Loss of taste or smell"),
        "diarrhea": ("Tiêu chảy", "Diarrhoea"),
        "nausea": ("Buồn nôn", "Nausea"),
        "dyspnea": ("Khó thở", "Shortness of breath"),
        "chest_pain": ("Đau tức ngực", "Chest pain"),
        "confusion": ("Lú lẫn", "Confusion"),
        "bluish_lips": ("Môi tím tái", "Bluish lips"),
    },
    "audit_action": {
        "activation_code.issue": ("Cấp mã kích hoạt", "Activation code issued"),
        "alert.acknowledge": ("Tiếp nhận cảnh báo", "Alert acknowledged"),
        "alert.escalate": ("Chuyển cảnh báo lên cấp trên", "Alert escalated"),
        "alert.resolve": ("Xử lý xong cảnh báo", "Alert resolved"),
        "biometrics.purge": ("Xóa dữ liệu sinh trắc học", "Biometric data deleted"),
        "checkin.judged": ("Chấm điểm danh", "Check-in judged"),
        "checkin.review": ("Cán bộ duyệt điểm danh", "Check-in reviewed by staff"),
        "declaration.submit": ("Khai báo y tế", "Health declaration"),
        "device.activate": ("Kích hoạt điện thoại", "Phone activated"),
        "device.revoke_all": ("Thu hồi mọi điện thoại", "All phones revoked"),
        "enrolment_photo.add": ("Thêm ảnh đăng ký", "Enrolment photo added"),
        "face_image.view": ("Xem ảnh khuôn mặt", "Face image viewed"),
        "fhir.export": ("Xuất dữ liệu FHIR", "FHIR export"),
        "person.activate": ("Bắt đầu cách ly", "Isolation started"),
        "person.assign_doctor": ("Phân công bác sĩ", "Doctor assigned"),
        "person.create": ("Đăng ký người cách ly", "Person enrolled"),
        "person.release": ("Kết thúc cách ly", "Released"),
        "person.schedule_policy": ("Đổi lịch điểm danh", "Check-in schedule changed"),
        "person.home_proposed": ("Điện thoại gửi vị trí nhà", "Phone proposed the home position"),
        "person.home_confirm": ("Xác nhận vị trí nhà", "Home position confirmed"),
        "person.home_reject": ("Bỏ vị trí điện thoại gửi", "Phone's home position refused"),
        "staff.login": ("Cán bộ đăng nhập", "Staff login"),
        "staff.login_failed": ("Đăng nhập sai", "Failed login"),
        "staff.login_locked": ("Tạm khóa đăng nhập", "Login locked"),
        "staff.login_throttled": ("Đăng nhập bị tạm dừng", "Login paused (backoff)"),
        "staff.password_change": ("Đổi mật khẩu", "Password changed"),
        "staff.password_change_failed": ("Đổi mật khẩu không thành công", "Password change failed"),
        "template.add_confirmed": (
            "Thêm mẫu khuôn mặt đã xác nhận",
            "Confirmed face template added",
        ),
    },
    "target_kind": {
        "alert": ("Cảnh báo", "Alert"),
        "checkin_attempt": ("Lần điểm danh", "Check-in attempt"),
        "person": ("Người cách ly", "Person"),
        "stored_image": ("Ảnh", "Image"),
    },
    "home_source": {
        "typed": ("Vị trí nhà: nhập tay", "Home position: typed"),
        "phone": (
            "Vị trí nhà: từ điện thoại, đã xác nhận", "Home position: from the phone, confirmed"
        ),
        "pending": ("Vị trí nhà: chờ xác nhận", "Home position: awaiting confirmation"),
    },
    "role": {
        "admin": ("Quản trị viên", "Administrator"),
        "area_staff": ("Cán bộ khu vực", "Area staff"),
        "doctor": ("Bác sĩ", "Doctor"),
    },
}


#: The schedule policy's refusals (server.schedule.policy, pydantic) in Vietnamese: English
#: pattern -> Vietnamese template (groups by name). Anything else reads as the generic text.
_POLICY_VI: list[tuple[str, str]] = [
    (r"window '(?P<a>[^']+)': start must be before end \(same day\)",
     "khung '{a}': giờ bắt đầu phải trước giờ kết thúc (trong cùng ngày)"),
    (r"window names must be unique", "tên các khung giờ phải khác nhau"),
    (r"window names may not start with 'spot'.*", "tên khung giờ không được bắt đầu bằng 'spot'"),
    (r"remind_before_due_minutes must be shorter than response_minutes",
     "thời gian nhắc trước hạn phải ngắn hơn thời gian phản hồi"),
    (r"waking_start must be before waking_end.*", "giờ thức phải bắt đầu trước khi kết thúc"),
    (r"waking hours are shorter than one response window",
     "khoảng giờ thức ngắn hơn một khung phản hồi"),
    (r"window '(?P<a>[^']+)' overlaps quiet hours", "khung '{a}' trùng giờ yên lặng"),
    (r"windows '(?P<a>[^']+)' and '(?P<b>[^']+)' overlap", "khung '{a}' và '{b}' trùng nhau"),
    (r"window '(?P<a>[^']+)' \(.*\) is shorter than.*", "khung '{a}' ngắn hơn thời gian phản hồi"),
    (r"waking hours overlap quiet hours", "giờ thức trùng giờ yên lặng"),
    (r"quiet hours must last at least 60 minutes.*",
     "giờ yên lặng phải kéo dài ít nhất 60 phút (hoặc để trống)"),
    (r"declaration_reminder_at falls in quiet hours", "giờ nhắc khai báo rơi vào giờ yên lặng"),
    (r"a JSON object is needed", "cần một đối tượng JSON"),
    (r"Expecting .*|Extra data.*|Unterminated .*|Invalid .*", "JSON không hợp lệ"),
    (r"Extra inputs are not permitted", "trường không được phép"),
    (r"Field required", "thiếu trường bắt buộc"),
    (r"Input should be a valid time.*", "cần giờ dạng HH:MM"),
    (r"Input should be a valid integer.*", "cần một số nguyên"),
    (r"Input should be greater than or equal to (?P<a>\S+)", "phải lớn hơn hoặc bằng {a}"),
    (r"Input should be less than or equal to (?P<a>\S+)", "phải nhỏ hơn hoặc bằng {a}"),
]


#: The policy's fields as the person page names them in Vietnamese.
_POLICY_FIELDS_VI = {
    "windows": "khung giờ",
    "response_minutes": "số phút phản hồi",
    "remind_before_due_minutes": "số phút nhắc trước hạn",
    "spot_checks_per_day": "số lần kiểm tra đột xuất mỗi ngày",
    "waking_start": "giờ thức",
    "waking_end": "giờ ngủ",
    "quiet_start": "bắt đầu giờ yên lặng",
    "quiet_end": "kết thúc giờ yên lặng",
    "declaration_reminder_at": "giờ nhắc khai báo",
    "max_attempts": "số lần thử",
}


def policy_message(text_: str, lang: str) -> str:
    """A schedule refusal (``field: reason; …``) in ``lang``: the field names stay (they are
    the form's), the reasons are translated; an unknown reason reads "giá trị không hợp lệ"."""
    if lang == "en":
        return text_
    import re

    parts = []
    for part in text_.split("; "):
        field, sep, reason = part.rpartition(": ")
        reason = reason.removeprefix("Value error, ")
        vi = "giá trị không hợp lệ"
        for pattern, template in _POLICY_VI:
            m = re.fullmatch(pattern, reason.strip())
            if m:
                vi = template.format(**m.groupdict())
                break
        if sep:
            field = ".".join(_POLICY_FIELDS_VI.get(f, f) for f in field.split("."))
        parts.append(f"{field}{sep}{vi}" if sep else vi)
    return "; ".join(parts)


def current_language() -> str:
    """The request's language: ``?lang=`` (remembered in the session), else the session's, else
    ``Accept-Language``, else Vietnamese."""
    asked = request.args.get("lang")
    if asked in LANGUAGES:
        session["lang"] = asked
        return asked
    kept = session.get("lang")
    if kept in LANGUAGES:
        return kept
    return request.accept_languages.best_match(LANGUAGES, default="vi") or "vi"


def text(key: str, lang: str) -> str:
    vi, en = TEXTS.get(key, (key, key))
    return en if lang == "en" else vi


def label(group: str, value: object, lang: str) -> str:
    raw = getattr(value, "value", value)
    pair = LABELS.get(group, {}).get(str(raw))
    if pair is None:
        return str(raw)
    return pair[1] if lang == "en" else pair[0]


def code_message(code: str | None, lang: str) -> tuple[str, str]:
    """The localised (title, detail) of a stable code from the server's catalogue (which also
    holds the face library's codes)."""
    if not code:
        return "", ""
    if code not in errors.MESSAGES:
        return code, ""
    return errors.message(code, lang)
