from neurospine import labels


def test_semantic_output_values_are_the_14_spineps_structures():
    assert len(labels.SEMANTIC_OUTPUT_VALUES) == 14
    for v in labels.SEMANTIC_OUTPUT_VALUES:
        assert labels.semantic_info(v).value == v


def test_instance_ids_follow_tptbox():
    assert labels.vertebra_name(1) == "C1"
    assert labels.vertebra_name(7) == "C7"
    assert labels.vertebra_name(8) == "T1"
    assert labels.vertebra_name(19) == "T12"
    assert labels.vertebra_name(28) == "T13"
    assert labels.vertebra_name(20) == "L1"
    assert labels.vertebra_name(25) == "L6"
    assert labels.vertebra_name(26) == "S1"
    assert labels.vertebra_id("L5") == 24
    assert labels.instance_name(119) == "disc_T12"
    assert labels.instance_name(224) == "endplate_L5"


def test_craniocaudal_order_puts_t13_between_t12_and_l1():
    order = labels.CRANIOCAUDAL_ORDER
    assert order.index(28) == order.index(19) + 1
    assert order.index(20) == order.index(28) + 1
    assert labels.next_caudal(24) == 25
    assert labels.next_caudal(26) is None


def test_exports_list_every_label():
    itk = labels.export_itksnap("semantic")
    slicer = labels.export_slicer("instance")
    for row in labels.all_label_rows("semantic"):
        assert f'"{row.name}"' in itk
    for row in labels.all_label_rows("instance"):
        assert f"{row.value} {row.name} " in slicer
    assert itk.startswith("# ITK-SnAP Label Description File")
