"""Province codes of the 12-digit personal identification number (DOMAIN.md section 1).

Circular 07/2016 Appendix 1: the 63 provinces before the 2025 merger. Each entry carries the
province's administrative centre and a few district-level names used to build synthetic
residences and home towns; the relative weights make big cities more populous, roughly.
"""

from __future__ import annotations

from typing import NamedTuple


class Province(NamedTuple):
    code: str
    name: str
    districts: tuple[str, ...]
    weight: float
    south: bool  # southern naming habits (Huỳnh, Võ) are more common from Quảng Nam southwards


def _p(code: str, name: str, districts: str, weight: float = 1.0) -> Province:
    return Province(code, name, tuple(d.strip() for d in districts.split(";")), weight,
                    int(code) >= 49)


PROVINCES: tuple[Province, ...] = (
    _p("001", "Hà Nội", "Hoàn Kiếm; Ba Đình; Đống Đa; Hai Bà Trưng; Cầu Giấy; Thanh Xuân; "
       "Long Biên; Hà Đông; Tây Hồ; Hoàng Mai; Sóc Sơn; Gia Lâm", 8.5),
    _p("002", "Hà Giang", "TP. Hà Giang; Vị Xuyên; Bắc Quang; Đồng Văn", 0.8),
    _p("004", "Cao Bằng", "TP. Cao Bằng; Trùng Khánh; Hòa An", 0.6),
    _p("006", "Bắc Kạn", "TP. Bắc Kạn; Ba Bể; Chợ Đồn", 0.5),
    _p("008", "Tuyên Quang", "TP. Tuyên Quang; Sơn Dương; Yên Sơn", 0.8),
    _p("010", "Lào Cai", "TP. Lào Cai; Sa Pa; Bảo Thắng", 0.8),
    _p("011", "Điện Biên", "TP. Điện Biên Phủ; Mường Ảng; Tuần Giáo", 0.6),
    _p("012", "Lai Châu", "TP. Lai Châu; Tam Đường; Phong Thổ", 0.5),
    _p("014", "Sơn La", "TP. Sơn La; Mộc Châu; Mai Sơn", 1.2),
    _p("015", "Yên Bái", "TP. Yên Bái; Nghĩa Lộ; Văn Yên", 0.8),
    _p("017", "Hòa Bình", "TP. Hòa Bình; Lương Sơn; Mai Châu", 0.9),
    _p("019", "Thái Nguyên", "TP. Thái Nguyên; Sông Công; Phổ Yên; Đại Từ", 1.3),
    _p("020", "Lạng Sơn", "TP. Lạng Sơn; Cao Lộc; Hữu Lũng", 0.8),
    _p("022", "Quảng Ninh", "TP. Hạ Long; Cẩm Phả; Uông Bí; Móng Cái", 1.4),
    _p("024", "Bắc Giang", "TP. Bắc Giang; Lục Ngạn; Việt Yên", 1.9),
    _p("025", "Phú Thọ", "TP. Việt Trì; Phú Thọ; Lâm Thao", 1.5),
    _p("026", "Vĩnh Phúc", "TP. Vĩnh Yên; Phúc Yên; Tam Đảo", 1.2),
    _p("027", "Bắc Ninh", "TP. Bắc Ninh; Từ Sơn; Tiên Du", 1.5),
    _p("030", "Hải Dương", "TP. Hải Dương; Chí Linh; Kinh Môn", 1.9),
    _p("031", "Hải Phòng", "Hồng Bàng; Lê Chân; Ngô Quyền; Kiến An; Thủy Nguyên", 2.1),
    _p("033", "Hưng Yên", "TP. Hưng Yên; Văn Lâm; Mỹ Hào", 1.3),
    _p("034", "Thái Bình", "TP. Thái Bình; Đông Hưng; Quỳnh Phụ", 1.9),
    _p("035", "Hà Nam", "TP. Phủ Lý; Duy Tiên; Kim Bảng", 0.9),
    _p("036", "Nam Định", "TP. Nam Định; Hải Hậu; Giao Thủy", 1.8),
    _p("037", "Ninh Bình", "TP. Ninh Bình; Tam Điệp; Hoa Lư", 1.0),
    _p("038", "Thanh Hóa", "TP. Thanh Hóa; Sầm Sơn; Bỉm Sơn; Hoằng Hóa", 3.7),
    _p("040", "Nghệ An", "TP. Vinh; Cửa Lò; Diễn Châu; Quỳnh Lưu", 3.4),
    _p("042", "Hà Tĩnh", "TP. Hà Tĩnh; Hồng Lĩnh; Kỳ Anh", 1.3),
    _p("044", "Quảng Bình", "TP. Đồng Hới; Ba Đồn; Bố Trạch", 0.9),
    _p("045", "Quảng Trị", "TP. Đông Hà; Quảng Trị; Vĩnh Linh", 0.6),
    _p("046", "Thừa Thiên Huế", "TP. Huế; Hương Thủy; Hương Trà; Phú Vang", 1.2),
    _p("048", "Đà Nẵng", "Hải Châu; Thanh Khê; Sơn Trà; Ngũ Hành Sơn; Liên Chiểu", 1.2),
    _p("049", "Quảng Nam", "TP. Tam Kỳ; Hội An; Điện Bàn; Núi Thành", 1.5),
    _p("051", "Quảng Ngãi", "TP. Quảng Ngãi; Đức Phổ; Bình Sơn", 1.2),
    _p("052", "Bình Định", "TP. Quy Nhơn; An Nhơn; Hoài Nhơn", 1.5),
    _p("054", "Phú Yên", "TP. Tuy Hòa; Sông Cầu; Đông Hòa", 0.9),
    _p("056", "Khánh Hòa", "TP. Nha Trang; Cam Ranh; Ninh Hòa", 1.3),
    _p("058", "Ninh Thuận", "TP. Phan Rang-Tháp Chàm; Ninh Hải; Ninh Phước", 0.6),
    _p("060", "Bình Thuận", "TP. Phan Thiết; La Gi; Hàm Thuận Bắc", 1.3),
    _p("062", "Kon Tum", "TP. Kon Tum; Đắk Hà; Ngọc Hồi", 0.6),
    _p("064", "Gia Lai", "TP. Pleiku; An Khê; Ayun Pa", 1.6),
    _p("066", "Đắk Lắk", "TP. Buôn Ma Thuột; Buôn Hồ; Krông Pắc", 1.9),
    _p("067", "Đắk Nông", "TP. Gia Nghĩa; Đắk Mil; Cư Jút", 0.7),
    _p("068", "Lâm Đồng", "TP. Đà Lạt; Bảo Lộc; Đức Trọng", 1.3),
    _p("070", "Bình Phước", "TP. Đồng Xoài; Bình Long; Phước Long", 1.0),
    _p("072", "Tây Ninh", "TP. Tây Ninh; Hòa Thành; Trảng Bàng", 1.2),
    _p("074", "Bình Dương", "TP. Thủ Dầu Một; Dĩ An; Thuận An; Bến Cát", 2.6),
    _p("075", "Đồng Nai", "TP. Biên Hòa; Long Khánh; Nhơn Trạch; Trảng Bom", 3.2),
    _p("077", "Bà Rịa-Vũng Tàu", "TP. Vũng Tàu; Bà Rịa; Phú Mỹ", 1.2),
    _p("079", "TP. Hồ Chí Minh", "Quận 1; Quận 3; Quận 5; Quận 10; Bình Thạnh; Gò Vấp; Phú Nhuận; "
       "Tân Bình; Thủ Đức; Bình Tân; Tân Phú; Quận 7", 9.2),
    _p("080", "Long An", "TP. Tân An; Kiến Tường; Bến Lức; Đức Hòa", 1.7),
    _p("082", "Tiền Giang", "TP. Mỹ Tho; Gò Công; Cai Lậy", 1.8),
    _p("083", "Bến Tre", "TP. Bến Tre; Mỏ Cày Nam; Ba Tri", 1.3),
    _p("084", "Trà Vinh", "TP. Trà Vinh; Duyên Hải; Cầu Ngang", 1.0),
    _p("086", "Vĩnh Long", "TP. Vĩnh Long; Bình Minh; Long Hồ", 1.0),
    _p("087", "Đồng Tháp", "TP. Cao Lãnh; Sa Đéc; Hồng Ngự", 1.6),
    _p("089", "An Giang", "TP. Long Xuyên; Châu Đốc; Tân Châu", 1.9),
    _p("091", "Kiên Giang", "TP. Rạch Giá; Hà Tiên; Phú Quốc", 1.7),
    _p("092", "Cần Thơ", "Ninh Kiều; Bình Thủy; Cái Răng; Ô Môn", 1.2),
    _p("093", "Hậu Giang", "TP. Vị Thanh; Ngã Bảy; Long Mỹ", 0.7),
    _p("094", "Sóc Trăng", "TP. Sóc Trăng; Vĩnh Châu; Ngã Năm", 1.2),
    _p("095", "Bạc Liêu", "TP. Bạc Liêu; Giá Rai; Hòa Bình", 0.9),
    _p("096", "Cà Mau", "TP. Cà Mau; Năm Căn; Trần Văn Thời", 1.2),
)

BY_CODE: dict[str, Province] = {p.code: p for p in PROVINCES}
